// The helper-thread reader behind the timeout link's first-token and idle limits.
#include "event_pump.h"

#include <algorithm>
#include <chrono>

namespace hfchain::plugins::timeout {

ThreadReaper::~ThreadReaper() {
  std::lock_guard lock(mutex_);
  for (Entry& entry : entries_) {
    if (entry.thread.joinable()) entry.thread.join();
  }
}

void ThreadReaper::adopt(std::thread thread, std::shared_ptr<std::atomic<bool>> finished) {
  std::lock_guard lock(mutex_);
  entries_.push_back(Entry{std::move(thread), std::move(finished)});
  joinFinished();
}

size_t ThreadReaper::pending() {
  std::lock_guard lock(mutex_);
  joinFinished();
  return entries_.size();
}

void ThreadReaper::joinFinished() {
  auto done = std::remove_if(entries_.begin(), entries_.end(), [](Entry& entry) {
    if (!entry.finished->load(std::memory_order_acquire)) return false;
    if (entry.thread.joinable()) entry.thread.join();
    return true;
  });
  entries_.erase(done, entries_.end());
}

EventPump::EventPump(sdk::Response inner, std::shared_ptr<ThreadReaper> reaper, size_t capacity)
    : state_(std::make_shared<State>()), reaper_(std::move(reaper)) {
  state_->inner = std::move(inner);
  thread_ = std::thread(&EventPump::run, state_, std::max<size_t>(1, capacity));
}

EventPump::~EventPump() { abandon(); }

void EventPump::run(const std::shared_ptr<State>& state, size_t capacity) {
  while (true) {
    auto event = std::make_unique<sdk::Event>(sdk::Event::make());
    bool has_event = state->inner.next(*event);
    std::unique_lock lock(state->mutex);
    if (!has_event || state->stopped) {
      state->ended = true;
      break;
    }
    state->space.wait(lock, [&] { return state->stopped || state->queue.size() < capacity; });
    if (state->stopped) break;
    state->queue.push_back(std::move(event));
    state->ready.notify_one();
  }
  state->ready.notify_all();
  // Destroying the inner response here closes its upstream connection, whether or not the
  // stream was read to its end.
  state->inner = sdk::Response();
  state->finished->store(true, std::memory_order_release);
}

EventPump::Wait EventPump::next(sdk::Event& out, int64_t deadline_ms) {
  constexpr int64_t kSliceMs = 50;
  std::unique_lock lock(state_->mutex);
  while (true) {
    if (!state_->queue.empty()) {
      out.copyFrom(*state_->queue.front());
      state_->queue.pop_front();
      state_->space.notify_one();
      return Wait::kEvent;
    }
    if (state_->ended) return Wait::kEnd;
    int64_t slice = kSliceMs;
    if (deadline_ms >= 0) {
      int64_t left = deadline_ms - sdk::nowMs();
      if (left <= 0) return Wait::kTimedOut;
      slice = std::min(slice, left);
    }
    state_->ready.wait_for(lock, std::chrono::milliseconds(slice));
  }
}

void EventPump::abandon() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    state_->queue.clear();
  }
  state_->space.notify_all();
  if (state_->finished->load(std::memory_order_acquire)) {
    thread_.join();
  } else {
    reaper_->adopt(std::move(thread_), state_->finished);
  }
}

}  // namespace hfchain::plugins::timeout
