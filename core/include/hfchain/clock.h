// Time as links and the engine see it. Everything that waits (retry backoff, breaker open
// periods, rate limits) reads and sleeps through here, so tests can swap in a manual clock
// and check delays exactly instead of sleeping.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "hfchain/request.h"

namespace hfchain {

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  // Monotonic milliseconds.
  virtual int64_t nowMs() = 0;
  // Waits up to `ms`; returns false early when `request` (may be null) is cancelled or its
  // deadline passes first.
  virtual bool sleepMs(const Request* request, int64_t ms) = 0;
};

// Returns the time source in use: the steady clock unless a test replaced it.
TimeSource& timeSource();

// Replaces the time source for the whole process; null restores the steady clock. The
// caller keeps ownership and must restore it before `source` is destroyed.
void setTimeSourceForTest(TimeSource* source);

// A clock that moves only when slept on or advanced, and records each sleep.
class ManualTimeSource : public TimeSource {
 public:
  int64_t nowMs() override;
  bool sleepMs(const Request* request, int64_t ms) override;
  void advance(int64_t ms);
  std::vector<int64_t> sleeps() const;

 private:
  mutable std::mutex mutex_;
  int64_t now_ms_ = 1'000'000;
  std::vector<int64_t> sleeps_;
};

}  // namespace hfchain
