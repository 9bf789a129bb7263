// A token bucket on caller-supplied time, so that it can be driven from a manual clock.
#pragma once

#include <cstdint>

namespace hfchain::plugins::limits {

// Holds up to `capacity` tokens and gains `per_ms` tokens each millisecond. take() may
// leave it below zero: a request that waits for its tokens reserves them first, so later
// requests queue up behind it. Not thread-safe; the owner locks.
class TokenBucket {
 public:
  TokenBucket(double capacity, double per_ms, int64_t now_ms);

  // Milliseconds until `amount` tokens are available: 0 when they are now, -1 when
  // `amount` exceeds the capacity and so never will be.
  int64_t waitMs(double amount, int64_t now_ms);
  void take(double amount, int64_t now_ms);
  // Returns tokens, for a request that was rejected after taking them or used fewer.
  void give(double amount, int64_t now_ms);
  bool full(int64_t now_ms);
  double capacity() const { return capacity_; }

 private:
  void refill(int64_t now_ms);

  double capacity_;
  double per_ms_;
  double tokens_;
  int64_t updated_ms_;
};

}  // namespace hfchain::plugins::limits
