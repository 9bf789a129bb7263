// The retry budget: retries may be at most a ratio of the requests seen over a sliding
// window, so that a failing upstream is not hit by a storm of retries.
#pragma once

#include <array>
#include <cstdint>

#include "retry_config.h"

namespace hfchain::plugins::retry {

// Counts requests and retries in kBuckets slices of the window; the window slides one slice
// at a time. Not thread-safe: the link guards each budget with its mutex.
class RetryBudget {
 public:
  explicit RetryBudget(const BudgetSettings& settings);

  // Counts a new request (its first attempt) at `now_ms`.
  void recordRequest(int64_t now_ms);
  // Counts a retry and returns true when the budget allows one more at `now_ms`; returns
  // false and counts nothing when it is spent.
  bool tryAcquireRetry(int64_t now_ms);

  int64_t requestsInWindow(int64_t now_ms);
  int64_t retriesInWindow(int64_t now_ms);

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    int64_t epoch = -1;  // slice number (now_ms / slice_ms) the counts belong to
    int64_t requests = 0;
    int64_t retries = 0;
  };

  Bucket& current(int64_t now_ms);
  bool live(const Bucket& bucket, int64_t now_ms) const;

  BudgetSettings settings_;
  int64_t slice_ms_;
  std::array<Bucket, kBuckets> buckets_{};
};

}  // namespace hfchain::plugins::retry
