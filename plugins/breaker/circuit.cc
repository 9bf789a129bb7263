// The circuit state machine and its failure window.
#include "circuit.h"

#include <algorithm>
#include <cmath>

namespace hfchain::plugins::breaker {

const char* circuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half-open";
  }
  return "closed";
}

FailureWindow::FailureWindow(int64_t window_ms)
    : bucket_ms_(std::max<int64_t>(1, window_ms / kBuckets)) {}

void FailureWindow::add(int64_t now_ms, bool failed) {
  int64_t index = now_ms / bucket_ms_;
  Bucket& bucket = buckets_[static_cast<size_t>(index % kBuckets)];
  if (bucket.index != index) bucket = Bucket{index, 0, 0};
  ++bucket.calls;
  if (failed) ++bucket.failures;
}

void FailureWindow::clear() { buckets_.fill(Bucket{}); }

FailureWindow::Totals FailureWindow::totals(int64_t now_ms) const {
  int64_t current = now_ms / bucket_ms_;
  Totals totals;
  for (const Bucket& bucket : buckets_) {
    if (bucket.index < 0 || bucket.index <= current - kBuckets || bucket.index > current) continue;
    totals.calls += bucket.calls;
    totals.failures += bucket.failures;
  }
  return totals;
}

Circuit::Circuit(const BreakerConfig& config)
    : config_(config), window_(config.window_ms), open_duration_ms_(config.open_ms) {}

CircuitState Circuit::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Transition Circuit::moveTo(CircuitState to, int64_t now_ms, std::string reason) {
  Transition transition{state_, to, std::move(reason)};
  if (to == CircuitState::kOpen) {
    // A re-open after a failed probe waits longer; an open from closed starts over.
    open_duration_ms_ =
        state_ == CircuitState::kHalfOpen
            ? std::min<int64_t>(config_.open_max_ms,
                                static_cast<int64_t>(std::llround(
                                    static_cast<double>(open_duration_ms_) * config_.open_backoff)))
            : config_.open_ms;
    open_until_ms_ = now_ms + open_duration_ms_;
  }
  if (to == CircuitState::kClosed) open_duration_ms_ = config_.open_ms;
  state_ = to;
  ++epoch_;
  consecutive_failures_ = 0;
  window_.clear();
  probes_.clear();
  probe_successes_ = 0;
  return transition;
}

Admission Circuit::admit(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Admission admission;
  if (state_ == CircuitState::kOpen) {
    if (now_ms < open_until_ms_) {
      admission.state = state_;
      admission.retry_after_ms = open_until_ms_ - now_ms;
      return admission;
    }
    admission.transition =
        moveTo(CircuitState::kHalfOpen, now_ms,
               "the open period of " + std::to_string(open_duration_ms_) + " ms ended");
  }
  if (state_ == CircuitState::kHalfOpen) {
    for (const auto& [id, started_ms] : probes_) {
      if (now_ms - started_ms >= config_.probe_timeout_ms) {
        // A probe that has not ended within probe_timeout_ms counts as failed. Its own
        // outcome, if it ever ends, belongs to an older epoch and is ignored.
        admission.transition = moveTo(CircuitState::kOpen, now_ms,
                                      "a probe ran for " + std::to_string(now_ms - started_ms) +
                                          " ms without an outcome (probe_timeout_ms " +
                                          std::to_string(config_.probe_timeout_ms) + ")");
        admission.state = state_;
        admission.retry_after_ms = open_until_ms_ - now_ms;
        return admission;
      }
    }
    if (static_cast<int64_t>(probes_.size()) >= config_.half_open_probes) {
      int64_t oldest = now_ms;
      for (const auto& [id, started_ms] : probes_) oldest = std::min(oldest, started_ms);
      admission.state = state_;
      admission.in_flight_probes = static_cast<int64_t>(probes_.size());
      admission.retry_after_ms = std::max<int64_t>(1, oldest + config_.probe_timeout_ms - now_ms);
      return admission;
    }
    admission.allowed = true;
    admission.probe = true;
    admission.probe_id = next_probe_id_++;
    probes_[admission.probe_id] = now_ms;
    admission.epoch = epoch_;
    admission.state = state_;
    return admission;
  }
  admission.allowed = true;
  admission.epoch = epoch_;
  admission.state = state_;
  return admission;
}

std::optional<Transition> Circuit::record(const Admission& ticket, Outcome outcome, int64_t now_ms,
                                          const std::string& failure_reason) {
  std::lock_guard lock(mutex_);
  if (!ticket.allowed || ticket.epoch != epoch_) return std::nullopt;
  if (state_ == CircuitState::kClosed) return recordClosed(outcome, now_ms, failure_reason);
  if (state_ == CircuitState::kHalfOpen && ticket.probe) {
    return recordHalfOpen(ticket, outcome, now_ms, failure_reason);
  }
  return std::nullopt;
}

std::optional<Transition> Circuit::recordClosed(Outcome outcome, int64_t now_ms,
                                                const std::string& failure_reason) {
  if (outcome == Outcome::kCancelled) return std::nullopt;
  if (outcome == Outcome::kSuccess) {
    consecutive_failures_ = 0;
    window_.add(now_ms, false);
    return std::nullopt;
  }
  ++consecutive_failures_;
  window_.add(now_ms, true);
  if (config_.consecutive_failures > 0 && consecutive_failures_ >= config_.consecutive_failures) {
    return moveTo(CircuitState::kOpen, now_ms,
                  std::to_string(consecutive_failures_) +
                      " consecutive failures, the last: " + failure_reason);
  }
  if (config_.failure_rate > 0) {
    FailureWindow::Totals totals = window_.totals(now_ms);
    if (totals.calls >= config_.min_calls &&
        static_cast<double>(totals.failures) >=
            config_.failure_rate * static_cast<double>(totals.calls)) {
      return moveTo(CircuitState::kOpen, now_ms,
                    std::to_string(totals.failures) + " of " + std::to_string(totals.calls) +
                        " calls failed within " + std::to_string(config_.window_ms) +
                        " ms, the last: " + failure_reason);
    }
  }
  return std::nullopt;
}

std::optional<Transition> Circuit::recordHalfOpen(const Admission& ticket, Outcome outcome,
                                                  int64_t now_ms,
                                                  const std::string& failure_reason) {
  if (probes_.erase(ticket.probe_id) == 0) return std::nullopt;
  if (outcome == Outcome::kCancelled) return std::nullopt;
  if (outcome == Outcome::kFailure) {
    return moveTo(CircuitState::kOpen, now_ms, "a probe failed: " + failure_reason);
  }
  ++probe_successes_;
  if (probe_successes_ < config_.half_open_probes) return std::nullopt;
  return moveTo(CircuitState::kClosed, now_ms,
                std::to_string(probe_successes_) +
                    (probe_successes_ == 1 ? " probe succeeded" : " probes succeeded"));
}

}  // namespace hfchain::plugins::breaker
