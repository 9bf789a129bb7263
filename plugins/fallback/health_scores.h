// Health scores of the endpoints of a tier: moving averages of the time to the first event and
// of the failure rate, so that the endpoint doing best is tried first.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "fallback_config.h"

namespace hfchain::plugins::fallback {

// Thread-safe. Endpoints are keyed by target name; one that has no samples yet scores 0, so
// a new endpoint is tried before one that has failed.
class HealthScores {
 public:
  explicit HealthScores(HealthSettings settings) : settings_(settings) {}

  // Records an attempt that delivered its first event after `first_event_ms`.
  void recordSuccess(const std::string& endpoint, double first_event_ms);
  // Records an attempt that failed before or during its stream.
  void recordFailure(const std::string& endpoint);

  // Returns the score of `endpoint`. Lower is better.
  double score(const std::string& endpoint) const;
  // Returns `endpoints` best score first. Equal scores keep their order.
  std::vector<std::string> order(const std::vector<std::string>& endpoints) const;

 private:
  struct Averages {
    double latency_ms = 0;
    double error_rate = 0;
    bool has_latency = false;
  };
  double scoreLocked(const std::string& endpoint) const;

  HealthSettings settings_;
  mutable std::mutex mutex_;
  std::map<std::string, Averages> averages_;  // guarded by mutex_
};

}  // namespace hfchain::plugins::fallback
