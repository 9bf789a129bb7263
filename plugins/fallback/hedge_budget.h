// The budget that hedges and extra attempts share: within a sliding window, at most
// min_per_window + ratio * requests of them.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>

#include "fallback_config.h"

namespace hfchain::plugins::fallback {

// Thread-safe. Times are milliseconds on the host clock.
class HedgeBudget {
 public:
  explicit HedgeBudget(BudgetSettings settings) : settings_(settings) {}

  // Counts one request that entered the link.
  void recordRequest(int64_t now_ms);
  // Spends one unit for a hedge, or returns false and spends nothing when the budget is used up.
  bool tryAcquireHedge(int64_t now_ms);
  // Spends one unit for an extra attempt after a failure. Extra attempts are never refused,
  // but they leave less room for hedges.
  void recordExtraAttempt(int64_t now_ms);

 private:
  void expire(int64_t now_ms);

  BudgetSettings settings_;
  std::mutex mutex_;
  std::deque<int64_t> requests_;  // arrival times; guarded by mutex_
  std::deque<int64_t> spent_;     // times of hedges and extra attempts; guarded by mutex_
};

}  // namespace hfchain::plugins::fallback
