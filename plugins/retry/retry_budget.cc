// The sliding-window retry budget.
#include "retry_budget.h"

#include <algorithm>
#include <cmath>

namespace hfchain::plugins::retry {

RetryBudget::RetryBudget(const BudgetSettings& settings)
    : settings_(settings), slice_ms_(std::max<int64_t>(1, settings.window_ms / kBuckets)) {}

RetryBudget::Bucket& RetryBudget::current(int64_t now_ms) {
  int64_t epoch = now_ms / slice_ms_;
  Bucket& bucket = buckets_[static_cast<size_t>(epoch % kBuckets)];
  if (bucket.epoch != epoch) bucket = Bucket{epoch, 0, 0};
  return bucket;
}

bool RetryBudget::live(const Bucket& bucket, int64_t now_ms) const {
  int64_t epoch = now_ms / slice_ms_;
  return bucket.epoch > epoch - kBuckets && bucket.epoch <= epoch;
}

void RetryBudget::recordRequest(int64_t now_ms) { ++current(now_ms).requests; }

int64_t RetryBudget::requestsInWindow(int64_t now_ms) {
  int64_t total = 0;
  for (const Bucket& bucket : buckets_) {
    if (live(bucket, now_ms)) total += bucket.requests;
  }
  return total;
}

int64_t RetryBudget::retriesInWindow(int64_t now_ms) {
  int64_t total = 0;
  for (const Bucket& bucket : buckets_) {
    if (live(bucket, now_ms)) total += bucket.retries;
  }
  return total;
}

bool RetryBudget::tryAcquireRetry(int64_t now_ms) {
  if (!settings_.enabled) return true;
  double by_ratio = std::floor(settings_.ratio * static_cast<double>(requestsInWindow(now_ms)));
  double allowed = std::max(by_ratio, static_cast<double>(settings_.min_retries_per_window));
  if (static_cast<double>(retriesInWindow(now_ms)) + 1 > allowed) return false;
  ++current(now_ms).retries;
  return true;
}

}  // namespace hfchain::plugins::retry
