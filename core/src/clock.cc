// The steady-clock time source and the manual one for tests.
#include "hfchain/clock.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace hfchain {
namespace {

class SteadyTimeSource : public TimeSource {
 public:
  int64_t nowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
  }

  bool sleepMs(const Request* request, int64_t ms) override {
    // Sleeps in slices so that a cancelled request wakes up within one slice.
    constexpr int64_t kSliceMs = 50;
    auto end = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(0, ms));
    bool full = true;
    if (request != nullptr && request->deadline && *request->deadline < end) {
      end = *request->deadline;
      full = false;
    }
    while (true) {
      if (request != nullptr && request->cancel.cancelled()) return false;
      auto now = Clock::now();
      if (now >= end) return full;
      std::this_thread::sleep_for(
          std::min(std::chrono::duration_cast<std::chrono::milliseconds>(end - now),
                   std::chrono::milliseconds(kSliceMs)));
    }
  }
};

SteadyTimeSource steady_source;
std::atomic<TimeSource*> current_source{&steady_source};

}  // namespace

TimeSource& timeSource() { return *current_source.load(std::memory_order_acquire); }

void setTimeSourceForTest(TimeSource* source) {
  current_source.store(source != nullptr ? source : &steady_source, std::memory_order_release);
}

int64_t ManualTimeSource::nowMs() {
  std::lock_guard lock(mutex_);
  return now_ms_;
}

bool ManualTimeSource::sleepMs(const Request* request, int64_t ms) {
  if (request != nullptr && request->cancel.cancelled()) return false;
  std::lock_guard lock(mutex_);
  sleeps_.push_back(ms);
  now_ms_ += std::max<int64_t>(0, ms);
  return true;
}

void ManualTimeSource::advance(int64_t ms) {
  std::lock_guard lock(mutex_);
  now_ms_ += ms;
}

std::vector<int64_t> ManualTimeSource::sleeps() const {
  std::lock_guard lock(mutex_);
  return sleeps_;
}

}  // namespace hfchain
