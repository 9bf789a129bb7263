// The streams the fallback link answers with: the stream of the attempt that served, with
// served_by on every event, caching and resumption; and replays of stored or fixed answers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attempt.h"
#include "hedging.h"
#include "resumption.h"

namespace hfchain::plugins::fallback {

// What a served stream needs beyond its attempt. The stream is read after roundTrip
// returned, so it owns copies of the request and of the rest of the chain.
struct ServeContext {
  std::shared_ptr<FallbackState> state;
  std::unique_ptr<sdk::OwnedNext> next;         // set when on_broken_stream is resume
  std::unique_ptr<sdk::OwnedRequest> original;  // set when on_broken_stream is resume
  std::unique_ptr<Plan> plan;                   // the attempts not yet made, for resumption
  std::string cache_key;                        // empty: the answer is not cached
  std::shared_ptr<HedgeRace> race;              // losers of a hedge, joined with the stream
};

class ServedStream : public sdk::Stream {
 public:
  ServedStream(ServeContext context, std::unique_ptr<Attempt> attempt);
  bool next(sdk::Event& out) override;

 private:
  bool readEvent(sdk::Event& out);
  bool deliverToken(sdk::Event& out);
  void deliverFinish(sdk::Event& out);
  // Asks the next endpoints to continue the delivered text; returns true when one answered.
  bool resume(const sdk::ErrorInfo& failure);

  ServeContext context_;
  std::unique_ptr<Attempt> attempt_;
  std::string served_by_;
  bool first_pending_ = true;
  std::unique_ptr<sdk::Event> held_finish_;  // a finish that waits behind flushed text
  std::string delivered_;
  int64_t tokens_delivered_ = 0;
  std::vector<std::string> token_texts_;  // recorded for the cache
  std::optional<ContinuationTrimmer> trimmer_;
  bool resumed_ = false;
  bool done_ = false;
};

// Token events of a stored or fixed answer, then its finish event, all marked served_by.
class ReplayStream : public sdk::Stream {
 public:
  ReplayStream(std::vector<std::string> tokens, std::string finish_reason, std::string served_by)
      : tokens_(std::move(tokens)),
        finish_reason_(std::move(finish_reason)),
        served_by_(std::move(served_by)) {}
  bool next(sdk::Event& out) override;

 private:
  std::vector<std::string> tokens_;
  std::string finish_reason_;
  std::string served_by_;
  size_t position_ = 0;
  bool done_ = false;
};

}  // namespace hfchain::plugins::fallback
