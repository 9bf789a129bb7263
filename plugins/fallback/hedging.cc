// Attempt threads and the wait for the first of them to finish.
#include "hedging.h"

#include <algorithm>

namespace hfchain::plugins::fallback {
namespace {

// How often next() looks at the clock while a hedge timer runs.
constexpr int64_t kPollMs = 2;

}  // namespace

HedgeRace::HedgeRace(std::shared_ptr<FallbackState> state, const sdk::Next& next)
    : state_(std::move(state)),
      next_(std::make_shared<sdk::OwnedNext>(next)),
      shared_(std::make_shared<Shared>()) {}

HedgeRace::~HedgeRace() {
  close();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void HedgeRace::launch(std::unique_ptr<Attempt> attempt) {
  const uint64_t id = next_id_++;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->running[id] = attempt->request->view().raw();
  }
  threads_.emplace_back(&HedgeRace::runThread, shared_, state_, next_, id, std::move(attempt));
}

void HedgeRace::runThread(std::shared_ptr<Shared> shared, std::shared_ptr<FallbackState> state,
                          std::shared_ptr<sdk::OwnedNext> next, uint64_t id,
                          std::unique_ptr<Attempt> attempt) {
  sdk::Next view = next->view();
  try {
    runAttempt(*state, view, *attempt);
  } catch (const std::exception& e) {
    attempt->failure =
        sdk::ErrorInfo{HFC_ERROR_INTERNAL, 0, std::string("attempt threw: ") + e.what()};
  }
  std::unique_ptr<Attempt> discarded;
  {
    std::lock_guard lock(shared->mutex);
    shared->running.erase(id);
    if (shared->closed) {
      discarded = std::move(attempt);
    } else {
      shared->finished.push_back(std::move(attempt));
    }
  }
  shared->changed.notify_all();
  if (!discarded || discarded->target.empty()) return;
  // A late result still tells how the endpoint is doing.
  if (!discarded->failure) {
    state->health.recordSuccess(discarded->target, static_cast<double>(discarded->first_event_ms));
  } else if (discarded->failure->error_class != HFC_ERROR_CANCELLED) {
    state->health.recordFailure(discarded->target);
  }
}

std::unique_ptr<Attempt> HedgeRace::next(const sdk::Request& caller, int64_t until_ms) {
  while (true) {
    {
      std::unique_lock lock(shared_->mutex);
      if (until_ms < 0) {
        shared_->changed.wait(
            lock, [&] { return !shared_->finished.empty() || shared_->running.empty(); });
      }
      if (!shared_->finished.empty()) {
        std::unique_ptr<Attempt> done = std::move(shared_->finished.front());
        shared_->finished.pop_front();
        return done;
      }
      if (until_ms < 0) return nullptr;
    }
    const int64_t now = sdk::nowMs();
    if (now >= until_ms) return nullptr;
    if (!sdk::sleepMs(&caller, std::min(kPollMs, until_ms - now))) return nullptr;
  }
}

void HedgeRace::close() {
  std::deque<std::unique_ptr<Attempt>> untaken;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->closed = true;
    for (const auto& [id, request] : shared_->running) sdk::host().request_cancel(request);
    untaken.swap(shared_->finished);
  }
}

size_t HedgeRace::running() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->running.size();
}

}  // namespace hfchain::plugins::fallback
