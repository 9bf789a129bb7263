// EventPump reads a response's event stream on a helper thread into a bounded queue, so
// that the reader can wait for the next event with a deadline although the inner stream's
// next() blocks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::timeout {

namespace sdk = hfchain::sdk;

// Owns the helper threads of pumps that were abandoned while their thread was still blocked
// in the inner stream. Each such thread ends once the inner next() returns, which the
// transport bounds by its idle and total timeouts and the request deadline. The link holds
// one reaper, so no helper thread outlives the link instance.
class ThreadReaper {
 public:
  ~ThreadReaper();
  // Takes `thread`, whose end `finished` reports. Joins the threads that have ended.
  void adopt(std::thread thread, std::shared_ptr<std::atomic<bool>> finished);
  // Returns how many adopted threads have not been joined yet.
  size_t pending();

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  void joinFinished();  // requires mutex_

  std::mutex mutex_;
  std::vector<Entry> entries_;
};

class EventPump {
 public:
  enum class Wait { kEvent, kEnd, kTimedOut };

  // Starts the helper thread, which owns `inner` from now on. At most `capacity` events
  // wait in the queue; the thread pauses while it is full.
  EventPump(sdk::Response inner, std::shared_ptr<ThreadReaper> reaper, size_t capacity = 16);
  // Abandons the pump if it still runs.
  ~EventPump();
  EventPump(const EventPump&) = delete;
  EventPump& operator=(const EventPump&) = delete;

  // Copies the next event into `out`. Waits until `deadline_ms` on the host clock (-1: no
  // deadline) and returns kTimedOut when no event arrived by then. The wait is a real
  // condition-variable wait in slices of at most 50 ms, checked against sdk::nowMs(), so a
  // manual test clock that does not move never times out.
  Wait next(sdk::Event& out, int64_t deadline_ms);

  // Stops delivering events and hands the helper thread to the reaper; the thread then
  // drops what it reads and destroys the inner response as soon as its blocked next()
  // returns. The caller cancels the request first so that this happens soon.
  void abandon();

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable ready;  // an event was queued, or the stream ended
    std::condition_variable space;  // the reader took an event, or the pump was abandoned
    std::deque<std::unique_ptr<sdk::Event>> queue;
    bool ended = false;    // the inner stream returned false; guarded by mutex
    bool stopped = false;  // abandoned; guarded by mutex
    sdk::Response inner;   // used only by the helper thread once it started
    std::shared_ptr<std::atomic<bool>> finished = std::make_shared<std::atomic<bool>>(false);
  };
  static void run(const std::shared_ptr<State>& state, size_t capacity);

  std::shared_ptr<State> state_;
  std::shared_ptr<ThreadReaper> reaper_;
  std::thread thread_;
};

}  // namespace hfchain::plugins::timeout
