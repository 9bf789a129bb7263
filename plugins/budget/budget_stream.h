// The budget link's response stream: enforces the output limit, settles the reservation
// once with the tokens used, and writes the request's audit record.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "audit_log.h"
#include "budget_state.h"
#include "hfchain/sdk/link.h"
#include "ledger.h"
#include "output_limiter.h"

namespace hfchain::plugins::budget {

// Facts about a request, gathered by the link before it sends the request.
struct RequestFacts {
  std::string request_id;
  std::string key_id;
  std::string tenant;
  std::string target;
  int64_t input_tokens = 0;   // the counted input tokens, after any truncation
  bool count_events = false;  // one token per token event; else the text is counted
  std::optional<Reservation> reservation;
  AuditRecord record;  // filled in except for the usage and the outcome
};

// Passes the inner events through until the output limit is reached, then ends with a
// finish event with reason "length" and drops the inner stream, which closes the upstream
// connection. Settles the reservation and writes the audit record exactly once: at the
// finish or error event, at the end of the inner stream, or in the destructor when the
// caller drops the stream early.
class BudgetStream : public sdk::Stream {
 public:
  // `limiter` is null when no output limit applies. `next` counts output text after the
  // link's roundTrip has returned.
  BudgetStream(sdk::Response inner, BudgetStateSharedPtr state,
               std::shared_ptr<sdk::OwnedNext> next, RequestFacts facts,
               std::unique_ptr<OutputLimiter> limiter);
  ~BudgetStream() override;

  bool next(sdk::Event& out) override;

 private:
  // Makes `out` the finish event of a cut stream.
  void writeCutFinish(sdk::Event& out);
  // Returns the output tokens delivered, counted by this stream.
  int64_t deliveredTokens();
  // Settles, records and counts the request. `prompt_tokens` and `completion_tokens` are
  // the upstream's usage, -1 when it sent none.
  void end(Outcome outcome, const std::string& error_class, int64_t prompt_tokens,
           int64_t completion_tokens);

  sdk::Response inner_;
  BudgetStateSharedPtr state_;
  std::shared_ptr<sdk::OwnedNext> next_;
  RequestFacts facts_;
  std::unique_ptr<OutputLimiter> limiter_;
  std::string text_;             // delivered text, when there is no limiter to keep it
  int64_t token_events_ = 0;     // token events delivered
  bool finish_pending_ = false;  // a cut piece was delivered; the cut finish comes next
  bool cut_ = false;
  bool ended_ = false;
};

}  // namespace hfchain::plugins::budget
