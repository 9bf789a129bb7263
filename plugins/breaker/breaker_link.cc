// The breaker link: one circuit per target. While a target's circuit is open, calls to it
// fail at once with circuit_open instead of waiting on a target that is down. After the open
// period, a limited number of probe calls decide whether it closes again.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "breaker_config.h"
#include "circuit.h"
#include "hfchain/sdk/link.h"

namespace hfchain::plugins::breaker {
namespace {

constexpr const char* kLogger = "breaker";

// Returns `value` escaped for use inside a quoted Prometheus label value.
std::string labelValue(std::string_view value) {
  std::string escaped;
  for (char c : value) {
    if (c == '\\' || c == '"') escaped += '\\';
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped += c;
  }
  return escaped;
}

// One target's circuit with the names its metrics and logs use.
struct TargetCircuit {
  TargetCircuit(std::string target_name, const BreakerConfig& config)
      : target(std::move(target_name)),
        target_label("target=\"" + labelValue(target) + "\""),
        circuit(config) {}

  // Logs and counts a state change. `request` may be null when the change happens while a
  // stream is read after roundTrip returned; `request_id` then names the call.
  void report(const std::optional<Transition>& transition, const sdk::Request* request,
              std::string_view request_id) const {
    if (!transition) return;
    std::string message = "target '" + target + "': " + circuitStateName(transition->from) +
                          " -> " + circuitStateName(transition->to) + ": " + transition->reason;
    if (request != nullptr) {
      request->log(HFC_LOG_WARNING, kLogger, message);
    } else {
      message = "[" + std::string(request_id) + "] " + message;
      sdk::host().log(nullptr, HFC_LOG_WARNING, sdk::detail::toStr(kLogger),
                      sdk::detail::toStr(message));
    }
    sdk::metricSet("hfchain_breaker_state", target_label,
                   static_cast<double>(static_cast<int>(transition->to)));
    sdk::metricAdd("hfchain_breaker_transitions_total",
                   target_label + ",to=\"" + circuitStateName(transition->to) + "\"");
  }

  const std::string target;
  const std::string target_label;
  Circuit circuit;
};

// The outcome of a call as the circuit counts it, with a reason for the log.
struct Classified {
  Outcome outcome = Outcome::kSuccess;
  std::string reason;
};

// Classifies a call that ended with an error. An error that is not configured as a failure
// counts as a success because the target responded, if only to reject this request. A
// cancelled call counts as neither.
Classified classify(const BreakerConfig& config, hfc_error_class error_class, int http_status,
                    const std::string& message) {
  if (error_class == HFC_ERROR_CANCELLED) return {Outcome::kCancelled, ""};
  if (config.failure_classes.test(error_class) || config.failure_statuses.count(http_status) != 0) {
    return {Outcome::kFailure, std::string(sdk::errorClassName(error_class)) + ": " + message};
  }
  return {Outcome::kSuccess, ""};
}

// Watches a response stream to learn how the call ended, and records that outcome when the
// stream ends or, as a cancellation, when it is destroyed before its end.
class OutcomeStream : public sdk::Stream {
 public:
  OutcomeStream(sdk::Response inner, std::shared_ptr<TargetCircuit> circuit,
                const BreakerConfig& config, Admission ticket, int64_t started_ms,
                std::string request_id)
      : inner_(std::move(inner)),
        circuit_(std::move(circuit)),
        config_(config),
        ticket_(ticket),
        started_ms_(started_ms),
        request_id_(std::move(request_id)) {}

  ~OutcomeStream() override {
    if (!settled_) settle(Outcome::kCancelled, "");
  }

  bool next(sdk::Event& out) override {
    if (!inner_.next(out)) {
      if (!settled_) settle(Outcome::kFailure, "the stream ended without a final event");
      return false;
    }
    if (settled_) return true;
    const int64_t now_ms = sdk::nowMs();
    if (out.isToken()) {
      observeToken(now_ms);
    } else if (out.isFinish()) {
      if (slow_reason_.empty()) {
        settle(Outcome::kSuccess, "");
      } else {
        settle(Outcome::kFailure, slow_reason_);
      }
    } else if (out.isError()) {
      const auto http_status = static_cast<int>(out.getInt(HFC_EVENT_ERROR_HTTP_STATUS));
      settleError(out.errorClass(), http_status, std::string(out.errorMessage()));
    }
    return true;
  }

 private:
  void observeToken(int64_t now_ms) {
    if (last_token_ms_ < 0) {
      const int64_t wait_ms = now_ms - started_ms_;
      if (config_.slow_first_token_ms > 0 && wait_ms > config_.slow_first_token_ms &&
          slow_reason_.empty()) {
        slow_reason_ = "slow call: the first token came after " + std::to_string(wait_ms) +
                       " ms (slow_call.first_token_ms " +
                       std::to_string(config_.slow_first_token_ms) + ")";
      }
    } else {
      const int64_t gap_ms = now_ms - last_token_ms_;
      if (config_.slow_gap_ms > 0 && gap_ms > config_.slow_gap_ms && slow_reason_.empty()) {
        slow_reason_ = "slow call: " + std::to_string(gap_ms) + " ms between two tokens" +
                       " (slow_call.gap_ms " + std::to_string(config_.slow_gap_ms) + ")";
      }
    }
    last_token_ms_ = now_ms;
  }

  void settleError(hfc_error_class error_class, int http_status, const std::string& message) {
    Classified classified = classify(config_, error_class, http_status, message);
    if (classified.outcome == Outcome::kSuccess && !slow_reason_.empty()) {
      settle(Outcome::kFailure, slow_reason_);
      return;
    }
    settle(classified.outcome, classified.reason);
  }

  void settle(Outcome outcome, const std::string& reason) {
    settled_ = true;
    circuit_->report(circuit_->circuit.record(ticket_, outcome, sdk::nowMs(), reason), nullptr,
                     request_id_);
  }

  sdk::Response inner_;
  std::shared_ptr<TargetCircuit> circuit_;
  const BreakerConfig& config_;
  Admission ticket_;
  int64_t started_ms_;
  std::string request_id_;
  int64_t last_token_ms_ = -1;
  std::string slow_reason_;
  bool settled_ = false;
};

class BreakerLink : public sdk::Link {
 public:
  static std::unique_ptr<BreakerLink> create(const nlohmann::json& settings, std::string& error) {
    std::unique_ptr<BreakerConfig> config = parseBreakerConfig(settings, error);
    if (!config) return nullptr;
    return std::unique_ptr<BreakerLink>(new BreakerLink(std::move(config)));
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    std::shared_ptr<TargetCircuit> circuit = circuitFor(targetName(request, next));
    const int64_t started_ms = sdk::nowMs();
    Admission ticket = circuit->circuit.admit(started_ms);
    circuit->report(ticket.transition, &request, request.id());
    if (!ticket.allowed) return reject(request, *circuit, ticket);

    sdk::Response response = next(request);
    if (!response.error()) {
      sdk::Response inner = sdk::takeStream(response);
      return sdk::wrap(std::move(response),
                       std::make_unique<OutcomeStream>(std::move(inner), circuit, *config_, ticket,
                                                       started_ms, std::string(request.id())));
    }
    // The call failed before its first event, so its outcome is known now.
    std::optional<sdk::ErrorInfo> error = response.error();
    Classified classified =
        classify(*config_, error->error_class, error->http_status, error->message);
    circuit->report(
        circuit->circuit.record(ticket, classified.outcome, sdk::nowMs(), classified.reason),
        &request, request.id());
    return response;
  }

 private:
  explicit BreakerLink(std::unique_ptr<BreakerConfig> config) : config_(std::move(config)) {}

  // The request's target, with the default target resolved to its name so that both
  // spellings share one circuit.
  static std::string targetName(const sdk::Request& request, const sdk::Next& next) {
    if (!request.target().empty()) return std::string(request.target());
    std::optional<sdk::TargetInfo> info = next.target("");
    return info ? info->name : std::string();
  }

  std::shared_ptr<TargetCircuit> circuitFor(const std::string& target) {
    std::lock_guard lock(mutex_);
    std::shared_ptr<TargetCircuit>& circuit = circuits_[target];
    if (!circuit) {
      circuit = std::make_shared<TargetCircuit>(target, *config_);
      sdk::metricSet("hfchain_breaker_state", circuit->target_label, 0);
    }
    return circuit;
  }

  sdk::Response reject(const sdk::Request& request, const TargetCircuit& circuit,
                       const Admission& ticket) const {
    std::string message =
        "circuit breaker for target '" + circuit.target + "' is " + circuitStateName(ticket.state);
    if (ticket.state == CircuitState::kOpen) {
      message += "; the next probe is allowed in " + std::to_string(ticket.retry_after_ms) + " ms";
    } else {
      message += " and its " + std::to_string(ticket.in_flight_probes) +
                 (ticket.in_flight_probes == 1 ? " probe is" : " probes are") +
                 " still running; retry in " + std::to_string(ticket.retry_after_ms) + " ms";
    }
    request.log(HFC_LOG_INFO, kLogger, "rejected: " + message);
    sdk::metricAdd("hfchain_breaker_rejected_total", circuit.target_label);
    return sdk::Response::error(
        sdk::ErrorInfo{HFC_ERROR_CIRCUIT_OPEN, 503, message, ticket.retry_after_ms, -1});
  }

  std::unique_ptr<BreakerConfig> config_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<TargetCircuit>> circuits_;
};

}  // namespace
}  // namespace hfchain::plugins::breaker

HFCHAIN_PLUGIN("breaker", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::breaker::BreakerLink, "breaker",
                            "fails fast with circuit_open while a target keeps failing"))
