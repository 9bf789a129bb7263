// The timeout link: bounds the rest of the chain in time. attempt_ms and total_ms become the
// request deadline, which the transport applies to every socket call and links apply to
// their waits. first_token_ms and idle_ms bound the gaps of the event stream, so the link
// reads that stream on a helper thread (EventPump) and can stop waiting and cancel.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "event_pump.h"
#include "hfchain/sdk/link.h"

namespace hfchain::plugins::timeout {
namespace {

constexpr const char* kLogger = "timeout";
constexpr int64_t kMaxMs = int64_t{24} * 60 * 60 * 1000;  // one day

struct Settings {
  int64_t attempt_ms = -1;  // -1: not set
  int64_t total_ms = -1;
  int64_t first_token_ms = -1;
  int64_t idle_ms = -1;
};

std::optional<Settings> parseSettings(const nlohmann::json& settings, std::string& error) {
  Settings parsed;
  const std::pair<const char*, int64_t*> kKeys[] = {{"attempt_ms", &parsed.attempt_ms},
                                                    {"total_ms", &parsed.total_ms},
                                                    {"first_token_ms", &parsed.first_token_ms},
                                                    {"idle_ms", &parsed.idle_ms}};
  for (const auto& [key, value] : settings.items()) {
    bool known = false;
    for (const auto& [name, slot] : kKeys) known = known || key == name;
    if (!known) {
      error =
          "unknown setting '" + key + "'; expected attempt_ms, total_ms, first_token_ms or idle_ms";
      return std::nullopt;
    }
  }
  bool any = false;
  for (const auto& [name, slot] : kKeys) {
    if (!settings.contains(name)) continue;
    const nlohmann::json& value = settings[name];
    if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > kMaxMs) {
      error = std::string(name) + " is " + value.dump() + "; expected milliseconds from 1 to " +
              std::to_string(kMaxMs);
      return std::nullopt;
    }
    *slot = value.get<int64_t>();
    any = true;
  }
  if (!any) {
    error = "no limit set; set at least one of attempt_ms, total_ms, first_token_ms or idle_ms";
    return std::nullopt;
  }
  return parsed;
}

// Delivers the inner events, giving up with a timeout error event when the first token, the
// next event or the deadline does not arrive in time.
class TimeoutStream : public sdk::Stream {
 public:
  struct Limits {
    int64_t first_token_at = -1;  // host-clock ms; -1: no limit
    int64_t deadline_at = -1;
    std::string deadline_name;  // "attempt_ms" or "total_ms"
    int64_t deadline_ms = -1;
    int64_t first_token_ms = -1;
    int64_t idle_ms = -1;
  };

  TimeoutStream(sdk::Response inner, std::unique_ptr<sdk::OwnedRequest> copy, Limits limits,
                std::shared_ptr<ThreadReaper> reaper, std::string target)
      : copy_(std::move(copy)),
        pump_(std::make_unique<EventPump>(std::move(inner), std::move(reaper))),
        limits_(std::move(limits)),
        target_(std::move(target)) {}

  ~TimeoutStream() override { stop(); }

  bool next(sdk::Event& out) override {
    if (!pump_) return false;
    int64_t idle_at = -1;
    if (saw_event_ && limits_.idle_ms >= 0) idle_at = last_event_at_ + limits_.idle_ms;
    int64_t first_at = saw_token_ ? -1 : limits_.first_token_at;
    int64_t wait_until = earliest({idle_at, first_at, limits_.deadline_at});

    switch (pump_->next(out, wait_until)) {
      case EventPump::Wait::kEvent:
        saw_event_ = true;
        last_event_at_ = sdk::nowMs();
        if (out.isToken() || out.isFinish()) saw_token_ = true;
        if (out.isFinish() || out.isError()) stop();
        return true;
      case EventPump::Wait::kEnd:
        stop();
        return false;
      case EventPump::Wait::kTimedOut:
        break;
    }
    std::string kind;
    std::string message;
    if (wait_until == first_at) {
      kind = "first_token";
      message = "no token from target " + target_ + " within first_token_ms (" +
                std::to_string(limits_.first_token_ms) + " ms)";
    } else if (wait_until == idle_at) {
      kind = "idle";
      message = "target " + target_ + " sent no event for idle_ms (" +
                std::to_string(limits_.idle_ms) + " ms)";
    } else {
      kind = limits_.deadline_name == "total_ms" ? "total" : "attempt";
      message = "the response of target " + target_ + " did not end within " +
                limits_.deadline_name + " (" + std::to_string(limits_.deadline_ms) + " ms)";
    }
    copy_->view().log(HFC_LOG_WARNING, kLogger, message + "; cancelling the stream");
    sdk::metricAdd("hfchain_timeout_total", "target=\"" + target_ + "\",kind=\"" + kind + "\"");
    stop();
    out.setError(sdk::ErrorInfo{HFC_ERROR_TIMEOUT, 0, message});
    return true;
  }

 private:
  static int64_t earliest(std::initializer_list<int64_t> times) {
    int64_t best = -1;
    for (int64_t time : times) {
      if (time >= 0 && (best < 0 || time < best)) best = time;
    }
    return best;
  }

  // Cancels this copy of the request and releases the inner stream: at once when the
  // helper thread is done, otherwise through the reaper once its blocked read returns, which
  // the transport makes happen within about 100 ms of the cancellation.
  void stop() {
    if (!pump_) return;
    copy_->view().cancel();
    pump_.reset();
  }

  std::unique_ptr<sdk::OwnedRequest> copy_;
  std::unique_ptr<EventPump> pump_;
  Limits limits_;
  std::string target_;
  bool saw_event_ = false;
  bool saw_token_ = false;
  int64_t last_event_at_ = 0;
};

class TimeoutLink : public sdk::Link {
 public:
  static std::unique_ptr<TimeoutLink> create(const nlohmann::json& settings, std::string& error) {
    std::optional<Settings> parsed = parseSettings(settings, error);
    if (!parsed) return nullptr;
    return std::unique_ptr<TimeoutLink>(new TimeoutLink(*parsed));
  }

  ~TimeoutLink() override {
    // Joins helper threads still blocked in an abandoned stream before the plugin can be
    // unloaded.
    reaper_.reset();
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    const int64_t start = sdk::nowMs();
    std::string deadline_name;
    int64_t deadline_ms = -1;
    if (settings_.attempt_ms >= 0) {
      deadline_name = "attempt_ms";
      deadline_ms = settings_.attempt_ms;
    }
    if (settings_.total_ms >= 0 && (deadline_ms < 0 || settings_.total_ms < deadline_ms)) {
      deadline_name = "total_ms";
      deadline_ms = settings_.total_ms;
    }
    const bool stream_limits = settings_.first_token_ms >= 0 || settings_.idle_ms >= 0;

    if (!stream_limits) {
      applyDeadline(request, deadline_ms);
      return next(request);
    }
    // A copy of its own lets the link cancel the attempt without cancelling the caller's
    // request, so a retry link further up can still try again.
    auto copy = std::make_unique<sdk::OwnedRequest>(request);
    sdk::Request view = copy->view();
    applyDeadline(view, deadline_ms);
    sdk::Response response = next(view);
    if (response.error()) return response;

    TimeoutStream::Limits limits;
    if (settings_.first_token_ms >= 0) limits.first_token_at = start + settings_.first_token_ms;
    if (deadline_ms >= 0) limits.deadline_at = start + deadline_ms;
    limits.deadline_name = deadline_name;
    limits.deadline_ms = deadline_ms;
    limits.first_token_ms = settings_.first_token_ms;
    limits.idle_ms = settings_.idle_ms;
    std::string target(request.target());
    if (target.empty()) {
      std::optional<sdk::TargetInfo> info = next.target("");
      target = info ? info->name : std::string("default");
    }
    sdk::Response inner = sdk::takeStream(response);
    return sdk::wrap(std::move(response),
                     std::make_unique<TimeoutStream>(std::move(inner), std::move(copy),
                                                     std::move(limits), reaper_, target));
  }

 private:
  explicit TimeoutLink(Settings settings) : settings_(settings) {}

  // Sets the deadline `from_now_ms` ahead, unless the request already has an earlier one.
  static void applyDeadline(sdk::Request& request, int64_t from_now_ms) {
    if (from_now_ms < 0) return;
    int64_t remaining = request.deadlineRemainingMs();
    if (remaining >= 0 && remaining <= from_now_ms) return;
    request.setDeadlineMs(from_now_ms);
  }

  const Settings settings_;
  std::shared_ptr<ThreadReaper> reaper_ = std::make_shared<ThreadReaper>();
};

}  // namespace
}  // namespace hfchain::plugins::timeout

HFCHAIN_PLUGIN("timeout", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::timeout::TimeoutLink, "timeout",
                            "bounds attempts, whole requests, the first token and idle gaps"))
