// Sliding-window accounting of hedges and extra attempts against requests.
#include "hedge_budget.h"

namespace hfchain::plugins::fallback {

void HedgeBudget::expire(int64_t now_ms) {
  const int64_t oldest = now_ms - settings_.window_ms;
  while (!requests_.empty() && requests_.front() <= oldest) requests_.pop_front();
  while (!spent_.empty() && spent_.front() <= oldest) spent_.pop_front();
}

void HedgeBudget::recordRequest(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  expire(now_ms);
  requests_.push_back(now_ms);
}

bool HedgeBudget::tryAcquireHedge(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  expire(now_ms);
  const double allowed = static_cast<double>(settings_.min_per_window) +
                         settings_.ratio * static_cast<double>(requests_.size());
  if (static_cast<double>(spent_.size()) + 1 > allowed) return false;
  spent_.push_back(now_ms);
  return true;
}

void HedgeBudget::recordExtraAttempt(int64_t now_ms) {
  std::lock_guard lock(mutex_);
  expire(now_ms);
  spent_.push_back(now_ms);
}

}  // namespace hfchain::plugins::fallback
