// Exponentially weighted moving averages per endpoint.
#include "health_scores.h"

#include <algorithm>

namespace hfchain::plugins::fallback {

void HealthScores::recordSuccess(const std::string& endpoint, double first_event_ms) {
  std::lock_guard lock(mutex_);
  Averages& averages = averages_[endpoint];
  const double alpha = settings_.alpha;
  averages.latency_ms = averages.has_latency
                            ? alpha * first_event_ms + (1 - alpha) * averages.latency_ms
                            : first_event_ms;
  averages.has_latency = true;
  averages.error_rate = (1 - alpha) * averages.error_rate;
}

void HealthScores::recordFailure(const std::string& endpoint) {
  std::lock_guard lock(mutex_);
  Averages& averages = averages_[endpoint];
  averages.error_rate = settings_.alpha + (1 - settings_.alpha) * averages.error_rate;
}

double HealthScores::score(const std::string& endpoint) const {
  std::lock_guard lock(mutex_);
  return scoreLocked(endpoint);
}

double HealthScores::scoreLocked(const std::string& endpoint) const {
  auto it = averages_.find(endpoint);
  if (it == averages_.end()) return 0;
  return settings_.latency_weight * it->second.latency_ms / 1000.0 +
         settings_.error_weight * it->second.error_rate;
}

std::vector<std::string> HealthScores::order(const std::vector<std::string>& endpoints) const {
  std::vector<std::pair<double, std::string>> scored;
  {
    std::lock_guard lock(mutex_);
    for (const std::string& endpoint : endpoints)
      scored.emplace_back(scoreLocked(endpoint), endpoint);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> ordered;
  for (auto& [score, endpoint] : scored) ordered.push_back(std::move(endpoint));
  return ordered;
}

}  // namespace hfchain::plugins::fallback
