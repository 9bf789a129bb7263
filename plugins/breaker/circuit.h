// The state machine of one circuit: closed, open and half-open, driven by call outcomes and
// by the time passed in by the caller. It reads no clock itself, so it can be driven from a
// manual clock in tests.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "breaker_config.h"

namespace hfchain::plugins::breaker {

// The values are those of the hfchain_breaker_state gauge.
enum class CircuitState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

const char* circuitStateName(CircuitState state);

struct Transition {
  CircuitState from = CircuitState::kClosed;
  CircuitState to = CircuitState::kClosed;
  std::string reason;
};

enum class Outcome { kSuccess, kFailure, kCancelled };

// The decision for one call, and the ticket its outcome is recorded with.
struct Admission {
  bool allowed = false;
  bool probe = false;                          // the call uses a half-open probe slot
  uint64_t epoch = 0;                          // the state period the call started in
  uint64_t probe_id = 0;                       // when `probe`
  CircuitState state = CircuitState::kClosed;  // the state after the decision
  int64_t retry_after_ms = -1;                 // when rejected: time until a call may pass
  int64_t in_flight_probes = 0;                // when rejected while half-open
  std::optional<Transition> transition;        // a state change the decision made
};

// Counts of calls and failures in a sliding time window. The window moves in steps of
// window_ms / 20 (at least 1 ms), so a call leaves it between 95% and 100% of window_ms
// after it ended. Memory stays fixed whatever the call rate.
class FailureWindow {
 public:
  explicit FailureWindow(int64_t window_ms);
  void add(int64_t now_ms, bool failed);
  void clear();
  struct Totals {
    int64_t calls = 0;
    int64_t failures = 0;
  };
  Totals totals(int64_t now_ms) const;

 private:
  static constexpr int64_t kBuckets = 20;
  struct Bucket {
    int64_t index = -1;  // now_ms / bucket_ms_ of the calls counted here
    int64_t calls = 0;
    int64_t failures = 0;
  };
  int64_t bucket_ms_;
  std::array<Bucket, kBuckets> buckets_;
};

// One target's circuit. Thread-safe.
class Circuit {
 public:
  explicit Circuit(const BreakerConfig& config);

  // Decides whether a call may start at `now_ms`. An allowed call must later be ended with
  // record(), also when it is cancelled, so that a probe slot is given back.
  Admission admit(int64_t now_ms);

  // Records how an allowed call ended. `failure_reason` describes a failure for the log.
  // Outcomes of calls that started in an earlier state period are ignored.
  std::optional<Transition> record(const Admission& ticket, Outcome outcome, int64_t now_ms,
                                   const std::string& failure_reason = "");

  CircuitState state() const;

 private:
  Transition moveTo(CircuitState to, int64_t now_ms, std::string reason);
  std::optional<Transition> recordClosed(Outcome outcome, int64_t now_ms,
                                         const std::string& failure_reason);
  std::optional<Transition> recordHalfOpen(const Admission& ticket, Outcome outcome, int64_t now_ms,
                                           const std::string& failure_reason);

  const BreakerConfig& config_;
  mutable std::mutex mutex_;
  CircuitState state_ = CircuitState::kClosed;
  uint64_t epoch_ = 1;
  int64_t consecutive_failures_ = 0;
  FailureWindow window_;
  int64_t open_until_ms_ = 0;
  int64_t open_duration_ms_ = 0;  // of the current or last open period
  uint64_t next_probe_id_ = 1;
  std::map<uint64_t, int64_t> probes_;  // probe id -> start time, while half-open
  int64_t probe_successes_ = 0;
};

}  // namespace hfchain::plugins::breaker
