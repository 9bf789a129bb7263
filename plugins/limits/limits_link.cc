// The limits link: request and token rate limits as token buckets, and a concurrency limit
// with a bounded wait queue. A request over a limit is rejected with rate_limited (HTTP 429)
// and, where a bucket will refill, the time until it does. No request waits without a bound.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "hfchain/sdk/link.h"
#include "limits_config.h"
#include "token_bucket.h"

namespace hfchain::plugins::limits {
namespace {

constexpr const char* kLogger = "limits";
// Partitions are swept for idle entries once the map contains this many.
constexpr size_t kSweepThreshold = 1024;
// Maximum real-time wait between two checks of a queued request's clock, deadline and
// cancellation.
constexpr int64_t kQueueCheckMs = 50;

// A queued request; `granted` is set by the call that hands it a slot.
struct Waiter {
  bool granted = false;
};

// The buckets and slots shared by the requests of one scope value (one target, one caller
// key, or all requests).
struct Partition {
  Partition(const LimitsConfig& config, int64_t now_ms) {
    if (config.requests_per_second > 0) {
      requests.emplace(config.burst, config.requests_per_second / 1000.0, now_ms);
    }
    if (config.tokens_per_minute > 0) {
      tokens.emplace(config.token_burst, config.tokens_per_minute / 60'000.0, now_ms);
    }
  }

  std::optional<TokenBucket> requests;
  std::optional<TokenBucket> tokens;
  int64_t active = 0;           // calls holding a concurrency slot
  std::deque<Waiter*> waiters;  // queued for a slot, first come first served
};

// State shared by the link and the streams it returns, which may outlive a roundTrip.
struct LimitsState {
  explicit LimitsState(std::unique_ptr<LimitsConfig> limits_config)
      : config(std::move(limits_config)) {}

  // Returns the partition for `key`, creating it. The caller must have locked `mutex`.
  std::shared_ptr<Partition> partitionLocked(const std::string& key, int64_t now_ms) {
    if (partitions.size() >= kSweepThreshold) sweepLocked(now_ms);
    std::shared_ptr<Partition>& partition = partitions[key];
    if (!partition) partition = std::make_shared<Partition>(*config, now_ms);
    return partition;
  }

  // Drops partitions that nothing uses and whose buckets are full, so that one-off caller
  // keys do not accumulate.
  void sweepLocked(int64_t now_ms) {
    for (auto it = partitions.begin(); it != partitions.end();) {
      Partition& partition = *it->second;
      bool idle = it->second.use_count() == 1 && partition.active == 0 &&
                  partition.waiters.empty() &&
                  (!partition.requests || partition.requests->full(now_ms)) &&
                  (!partition.tokens || partition.tokens->full(now_ms));
      it = idle ? partitions.erase(it) : std::next(it);
    }
  }

  // Gives a concurrency slot back, or hands it to the first queued request.
  void releaseSlot(Partition& partition) {
    std::lock_guard lock(mutex);
    if (partition.waiters.empty()) {
      --partition.active;
      return;
    }
    partition.waiters.front()->granted = true;
    partition.waiters.pop_front();
    slot_freed.notify_all();
  }

  // Returns tokens and a request taken for a call that never reached the target.
  void refund(Partition& partition, double tokens) {
    std::lock_guard lock(mutex);
    const int64_t now_ms = sdk::nowMs();
    if (partition.requests) partition.requests->give(1, now_ms);
    if (partition.tokens && tokens > 0) partition.tokens->give(tokens, now_ms);
  }

  // Replaces a call's token estimate with what the target reported it used.
  void settleTokens(Partition& partition, double estimate, double used) {
    std::lock_guard lock(mutex);
    if (!partition.tokens) return;
    const int64_t now_ms = sdk::nowMs();
    if (used < estimate) {
      partition.tokens->give(estimate - used, now_ms);
    } else {
      partition.tokens->take(used - estimate, now_ms);
    }
  }

  const std::unique_ptr<LimitsConfig> config;
  std::mutex mutex;
  std::condition_variable slot_freed;
  std::map<std::string, std::shared_ptr<Partition>> partitions;
};

// Passes a response's events through, settles the token estimate with the usage of the
// finish event, and gives the concurrency slot back when the stream ends or is destroyed.
class SlotStream : public sdk::Stream {
 public:
  SlotStream(sdk::Response inner, std::shared_ptr<LimitsState> state,
             std::shared_ptr<Partition> partition, bool holds_slot, double token_estimate)
      : inner_(std::move(inner)),
        state_(std::move(state)),
        partition_(std::move(partition)),
        holds_slot_(holds_slot),
        token_estimate_(token_estimate) {}

  ~SlotStream() override { end(); }

  bool next(sdk::Event& out) override {
    if (!inner_.next(out)) {
      end();
      return false;
    }
    if (out.isFinish()) {
      const int64_t prompt = out.promptTokens();
      const int64_t completion = out.completionTokens();
      if (token_estimate_ > 0 && (prompt >= 0 || completion >= 0)) {
        const double used =
            static_cast<double>(std::max<int64_t>(0, prompt) + std::max<int64_t>(0, completion));
        state_->settleTokens(*partition_, token_estimate_, used);
      }
      end();
    } else if (out.isError()) {
      end();
    }
    return true;
  }

 private:
  void end() {
    if (holds_slot_) state_->releaseSlot(*partition_);
    holds_slot_ = false;
  }

  sdk::Response inner_;
  std::shared_ptr<LimitsState> state_;
  std::shared_ptr<Partition> partition_;
  bool holds_slot_;
  double token_estimate_;
};

class LimitsLink : public sdk::Link {
 public:
  static std::unique_ptr<LimitsLink> create(const nlohmann::json& settings, std::string& error) {
    std::unique_ptr<LimitsConfig> config = parseLimitsConfig(settings, error);
    if (!config) return nullptr;
    return std::unique_ptr<LimitsLink>(
        new LimitsLink(std::make_shared<LimitsState>(std::move(config))));
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    const LimitsConfig& config = *state_->config;
    const double estimate = config.tokens_per_minute > 0 ? estimateTokens(request) : 0;
    std::shared_ptr<Partition> partition;
    {
      std::lock_guard lock(state_->mutex);
      partition = state_->partitionLocked(partitionKey(request, next), sdk::nowMs());
    }
    if (std::optional<sdk::Response> rejected = takeRate(request, *partition, estimate)) {
      return std::move(*rejected);
    }
    const bool holds_slot = config.max_concurrent > 0;
    if (holds_slot) {
      if (std::optional<sdk::Response> rejected = acquireSlot(request, *partition)) {
        state_->refund(*partition, estimate);
        return std::move(*rejected);
      }
    }

    sdk::Response response = next(request);
    if (response.error()) {
      // Nothing was generated, so the call's token estimate is given back.
      if (estimate > 0) state_->settleTokens(*partition, estimate, 0);
      if (holds_slot) state_->releaseSlot(*partition);
      return response;
    }
    sdk::Response inner = sdk::takeStream(response);
    return sdk::wrap(std::move(response),
                     std::make_unique<SlotStream>(std::move(inner), state_, std::move(partition),
                                                  holds_slot, estimate));
  }

 private:
  explicit LimitsLink(std::shared_ptr<LimitsState> state) : state_(std::move(state)) {}

  // NOTE: an estimate, not a count: max_new_tokens (or default_max_new_tokens) plus one
  // token per four characters of prompt. The finish event's usage corrects it afterwards.
  double estimateTokens(const sdk::Request& request) const {
    int64_t max_new_tokens = state_->config->default_max_new_tokens;
    if (std::optional<nlohmann::json> value = request.param("max_new_tokens")) {
      if (value->is_number_integer() && value->get<int64_t>() >= 0) {
        max_new_tokens = value->get<int64_t>();
      }
    }
    size_t prompt_chars = request.inputs().size();
    for (size_t i = 0; i < request.messageCount(); ++i) {
      prompt_chars += request.message(i).second.size();
    }
    return static_cast<double>(max_new_tokens) + static_cast<double>((prompt_chars + 3) / 4);
  }

  std::string partitionKey(const sdk::Request& request, const sdk::Next& next) const {
    std::string key;
    if (state_->config->per_target) {
      if (!request.target().empty()) {
        key = request.target();
      } else if (std::optional<sdk::TargetInfo> info = next.target("")) {
        key = info->name;
      }
    }
    if (state_->config->per_key) {
      key += '\n';
      key += request.meta("key").value_or("");
    }
    return key;
  }

  // Takes one request and the token estimate from the buckets, waiting up to max_wait_ms
  // for them to refill. Returns the response to send instead when the request may not pass.
  std::optional<sdk::Response> takeRate(const sdk::Request& request, Partition& partition,
                                        double estimate) {
    const LimitsConfig& config = *state_->config;
    if (!partition.requests && !partition.tokens) return std::nullopt;
    int64_t wait_ms = 0;
    const char* reason = "requests_per_second";
    {
      std::lock_guard lock(state_->mutex);
      const int64_t now_ms = sdk::nowMs();
      if (partition.requests) wait_ms = partition.requests->waitMs(1, now_ms);
      if (partition.tokens) {
        const int64_t token_wait_ms = partition.tokens->waitMs(estimate, now_ms);
        if (token_wait_ms < 0) {
          return reject(request, "tokens_per_minute",
                        "the request's estimated " +
                            std::to_string(static_cast<int64_t>(estimate)) +
                            " tokens exceed the token bucket of " +
                            std::to_string(static_cast<int64_t>(partition.tokens->capacity())) +
                            "; lower max_new_tokens or raise token_burst",
                        -1);
        }
        if (token_wait_ms > wait_ms) {
          wait_ms = token_wait_ms;
          reason = "tokens_per_minute";
        }
      }
      const int64_t deadline_ms = request.deadlineRemainingMs();
      if (wait_ms > config.max_wait_ms || (deadline_ms >= 0 && wait_ms > deadline_ms)) {
        return reject(request, reason, limitText(reason) + " reached", wait_ms);
      }
      // The tokens are taken before the wait, so that requests arriving meanwhile wait
      // behind this one instead of taking the same refill.
      if (partition.requests) partition.requests->take(1, now_ms);
      if (partition.tokens) partition.tokens->take(estimate, now_ms);
    }
    if (wait_ms == 0) return std::nullopt;
    request.log(HFC_LOG_DEBUG, kLogger,
                "waiting " + std::to_string(wait_ms) + " ms for the " + limitText(reason));
    if (sdk::sleepMs(&request, wait_ms)) return std::nullopt;
    state_->refund(partition, estimate);
    return stopped(request, "while waiting for the " + limitText(reason));
  }

  // Takes a concurrency slot, queueing for one when all are taken. Returns the response to
  // send instead when the request may not pass.
  std::optional<sdk::Response> acquireSlot(const sdk::Request& request, Partition& partition) {
    const LimitsConfig& config = *state_->config;
    std::unique_lock lock(state_->mutex);
    if (partition.active < config.max_concurrent && partition.waiters.empty()) {
      ++partition.active;
      return std::nullopt;
    }
    if (static_cast<int64_t>(partition.waiters.size()) >= config.max_queue) {
      return reject(request, "queue_full",
                    "all " + std::to_string(config.max_concurrent) +
                        " concurrency slots are taken and the queue of " +
                        std::to_string(config.max_queue) + " is full",
                    -1);
    }

    Waiter waiter;
    partition.waiters.push_back(&waiter);
    const int64_t queued_ms = sdk::nowMs();
    request.log(HFC_LOG_DEBUG, kLogger, "queued for a concurrency slot");
    // NOTE: the wait itself runs on a condition variable in real time, in steps of at most
    // kQueueCheckMs, so that a released slot wakes the request at once. The queue timeout
    // is measured on the host clock, which a test may replace with a manual one.
    while (!waiter.granted) {
      std::optional<sdk::Response> stop;
      const int64_t waited_ms = sdk::nowMs() - queued_ms;
      if (request.cancelled() || request.deadlineRemainingMs() == 0) {
        stop = stopped(request, "while queued for a concurrency slot");
      } else if (waited_ms >= config.queue_timeout_ms) {
        stop = reject(request, "queue_timeout",
                      "no concurrency slot of " + std::to_string(config.max_concurrent) +
                          " became free within queue_timeout_ms " +
                          std::to_string(config.queue_timeout_ms),
                      -1);
      }
      if (stop) {
        std::erase(partition.waiters, &waiter);
        return stop;
      }

      const int64_t step_ms = std::min(kQueueCheckMs, config.queue_timeout_ms - waited_ms);
      state_->slot_freed.wait_for(lock, std::chrono::milliseconds(step_ms));
    }
    return std::nullopt;
  }

  static std::string limitText(const std::string& reason) {
    return reason == "requests_per_second" ? "request rate limit" : "token rate limit";
  }

  // A typed rejection: rate_limited, HTTP 429, logged and counted by reason.
  static sdk::Response reject(const sdk::Request& request, const std::string& reason,
                              const std::string& message, int64_t retry_after_ms) {
    std::string text = message;
    if (retry_after_ms >= 0) text += "; retry in " + std::to_string(retry_after_ms) + " ms";
    request.log(HFC_LOG_INFO, kLogger, "rejected (" + reason + "): " + text);
    sdk::metricAdd("hfchain_limits_rejected_total", "reason=\"" + reason + "\"");
    return sdk::Response::error(
        sdk::ErrorInfo{HFC_ERROR_RATE_LIMITED, 429, text, retry_after_ms, -1});
  }

  // The response for a request cancelled or out of time while it waited.
  static sdk::Response stopped(const sdk::Request& request, const std::string& where) {
    const bool cancelled = request.cancelled();
    std::string message =
        std::string(cancelled ? "the request was cancelled " : "the request deadline passed ") +
        where;
    request.log(HFC_LOG_INFO, kLogger, message);
    return sdk::Response::error(
        sdk::ErrorInfo{cancelled ? HFC_ERROR_CANCELLED : HFC_ERROR_TIMEOUT, 0, message, -1, -1});
  }

  std::shared_ptr<LimitsState> state_;
};

}  // namespace
}  // namespace hfchain::plugins::limits

HFCHAIN_PLUGIN("limits", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::limits::LimitsLink, "limits",
                            "rejects requests over a request, token or concurrency limit"))
