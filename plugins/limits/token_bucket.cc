// The token bucket of the limits link.
#include "token_bucket.h"

#include <algorithm>
#include <cmath>

namespace hfchain::plugins::limits {

TokenBucket::TokenBucket(double capacity, double per_ms, int64_t now_ms)
    : capacity_(capacity), per_ms_(per_ms), tokens_(capacity), updated_ms_(now_ms) {}

void TokenBucket::refill(int64_t now_ms) {
  if (now_ms <= updated_ms_) return;
  tokens_ = std::min(capacity_, tokens_ + per_ms_ * static_cast<double>(now_ms - updated_ms_));
  updated_ms_ = now_ms;
}

int64_t TokenBucket::waitMs(double amount, int64_t now_ms) {
  refill(now_ms);
  if (amount > capacity_) return -1;
  // A small tolerance keeps rounding in the refill from asking for one more millisecond.
  const double missing = amount - tokens_;
  if (missing <= 1e-9) return 0;
  return static_cast<int64_t>(std::ceil(missing / per_ms_ - 1e-9));
}

void TokenBucket::take(double amount, int64_t now_ms) {
  refill(now_ms);
  tokens_ -= amount;
}

void TokenBucket::give(double amount, int64_t now_ms) {
  refill(now_ms);
  tokens_ = std::min(capacity_, tokens_ + amount);
}

bool TokenBucket::full(int64_t now_ms) {
  refill(now_ms);
  return tokens_ >= capacity_;
}

}  // namespace hfchain::plugins::limits
