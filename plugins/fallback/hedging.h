// Hedged attempts: several attempts of one tier running on threads of their own, of which
// the first to deliver a first event wins.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "attempt.h"

namespace hfchain::plugins::fallback {

// Runs attempts concurrently and hands their results back in the order they finish. Used by
// one thread at a time; the attempt threads touch only the race's shared part, the state and
// their own attempt, all of which they keep alive themselves.
class HedgeRace {
 public:
  HedgeRace(std::shared_ptr<FallbackState> state, const sdk::Next& next);
  // Closes the race and joins every attempt thread. This waits for attempts still running to
  // return from the rest of the chain.
  ~HedgeRace();
  HedgeRace(const HedgeRace&) = delete;
  HedgeRace& operator=(const HedgeRace&) = delete;

  // Starts `attempt` on a thread of its own.
  void launch(std::unique_ptr<Attempt> attempt);
  // Returns the next attempt that reached its first event or failed. Waits until `until_ms`
  // on the host clock, or without a limit when it is -1; returns null when that time passed,
  // when `caller` was cancelled or ran out of time, or when no attempt is left running.
  std::unique_ptr<Attempt> next(const sdk::Request& caller, int64_t until_ms);
  // Ends the race: cancels the requests of attempts still running and frees the results not
  // taken. An attempt that returns later frees its response, closing its connection.
  void close();
  size_t running() const;

 private:
  struct Shared {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::unique_ptr<Attempt>> finished;  // guarded by mutex
    std::map<uint64_t, hfc_request*> running;       // guarded by mutex
    bool closed = false;                            // guarded by mutex
  };

  static void runThread(std::shared_ptr<Shared> shared, std::shared_ptr<FallbackState> state,
                        std::shared_ptr<sdk::OwnedNext> next, uint64_t id,
                        std::unique_ptr<Attempt> attempt);

  std::shared_ptr<FallbackState> state_;
  std::shared_ptr<sdk::OwnedNext> next_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
  uint64_t next_id_ = 0;
};

}  // namespace hfchain::plugins::fallback
