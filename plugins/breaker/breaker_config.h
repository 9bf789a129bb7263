// Settings of the breaker link, parsed and validated from the link's JSON settings.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace hfchain::plugins::breaker {

struct BreakerConfig {
  // Opening on the failure rate: the circuit opens when, within the last window_ms, at least
  // min_calls calls ended and the share of failures is at least failure_rate. 0 turns it off.
  double failure_rate = 0.5;
  int64_t window_ms = 30'000;
  int64_t min_calls = 10;
  // Opening on a run of failures without a success between them. 0 turns it off.
  int64_t consecutive_failures = 5;
  // How long the circuit stays open. Each re-open after a failed probe multiplies the
  // previous duration by open_backoff, up to open_max_ms; closing resets it to open_ms.
  int64_t open_ms = 30'000;
  double open_backoff = 1.0;
  int64_t open_max_ms = 300'000;
  // Calls let through at once while half-open; this many successes close the circuit.
  int64_t half_open_probes = 1;
  // A probe still running after this long counts as failed, so that a probe that never
  // ends cannot keep the circuit half-open.
  int64_t probe_timeout_ms = 60'000;
  // Error classes (indexed by hfc_error_class) and HTTP statuses that count as failures.
  std::bitset<64> failure_classes;
  std::set<int> failure_statuses;
  // Slow calls count as failures when set (0: off): the first token arrived later than
  // slow_first_token_ms after the call started, or two tokens were further apart than
  // slow_gap_ms.
  int64_t slow_first_token_ms = 0;
  int64_t slow_gap_ms = 0;
};

// Parses the settings; returns null and sets `error` to a message naming the key, the value
// and what is expected.
std::unique_ptr<BreakerConfig> parseBreakerConfig(const nlohmann::json& settings,
                                                  std::string& error);

}  // namespace hfchain::plugins::breaker
