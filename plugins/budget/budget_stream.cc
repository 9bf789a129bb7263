// The output limit on the stream, and settling and auditing at its end.
#include "budget_stream.h"

#include <algorithm>
#include <utility>

#include "context_window.h"

namespace hfchain::plugins::budget {

BudgetStream::BudgetStream(sdk::Response inner, BudgetStateSharedPtr state,
                           std::shared_ptr<sdk::OwnedNext> next, RequestFacts facts,
                           std::unique_ptr<OutputLimiter> limiter)
    : inner_(std::move(inner)),
      state_(std::move(state)),
      next_(std::move(next)),
      facts_(std::move(facts)),
      limiter_(std::move(limiter)) {}

BudgetStream::~BudgetStream() {
  if (ended_) return;
  // The caller dropped the stream before its end: what was delivered is what is charged.
  try {
    end(Outcome::kError, "cancelled", -1, -1);
  } catch (const std::exception& e) {
    logForRequest(facts_.request_id, HFC_LOG_WARNING,
                  std::string("settling a dropped stream failed: ") + e.what());
  }
}

bool BudgetStream::next(sdk::Event& out) {
  if (ended_ && !finish_pending_) return false;
  if (finish_pending_) {
    finish_pending_ = false;
    writeCutFinish(out);
    return true;
  }
  if (!inner_.next(out)) {
    end(Outcome::kError, "stream_incomplete", -1, -1);
    return false;
  }
  if (out.isToken()) {
    if (!limiter_) {
      ++token_events_;
      text_ += out.text();
      return true;
    }
    const std::string piece(out.text());
    const size_t keep =
        facts_.count_events ? limiter_->addTokenEvent(piece) : limiter_->addText(piece);
    if (!limiter_->reached()) {
      ++token_events_;
      return true;
    }
    if (keep == 0) {
      writeCutFinish(out);
      return true;
    }
    out.setText(std::string_view(piece).substr(0, keep));
    ++token_events_;
    finish_pending_ = true;
    cut_ = true;
    // The reservation is settled now; the finish event follows on the next call.
    end(Outcome::kLengthCut, "", -1, -1);
    return true;
  }
  if (out.isFinish()) {
    end(Outcome::kOk, "", out.promptTokens(), out.completionTokens());
  } else if (out.isError()) {
    end(Outcome::kError, sdk::errorClassName(out.errorClass()), -1, -1);
  }
  return true;
}

void BudgetStream::writeCutFinish(sdk::Event& out) {
  const int64_t delivered = deliveredTokens();
  sdk::Event finish = sdk::Event::make();
  finish.setKind(HFC_EVENT_FINISH);
  finish.setFinishReason("length");
  finish.setGeneratedText(limiter_->text());
  finish.setCompletionTokens(delivered);
  out.copyFrom(finish);
  cut_ = true;
  // Dropping the inner response cancels it, so the upstream stops generating.
  inner_ = sdk::Response();
  sdk::metricAdd("hfchain_budget_output_cutoffs_total",
                 "target=\"" + labelValue(facts_.target) + "\"");
  logForRequest(facts_.request_id, HFC_LOG_INFO,
                "output cut at " + std::to_string(delivered) + " tokens, the output limit of " +
                    std::to_string(limiter_->limit()) + " tokens for target \"" + facts_.target +
                    "\"; finish reason length");
  if (!ended_) end(Outcome::kLengthCut, "", -1, -1);
}

int64_t BudgetStream::deliveredTokens() {
  if (limiter_) return limiter_->tokens();
  if (text_.empty()) return facts_.count_events ? token_events_ : 0;
  std::optional<sdk::TokenCount> count = next_->view().countText(facts_.target, text_);
  if (!count) return token_events_;
  // A token event may carry several tokens (a non-streamed response is one event), so with
  // events counting the text's own count wins when it is larger.
  return facts_.count_events ? std::max(token_events_, count->tokens) : count->tokens;
}

void BudgetStream::end(Outcome outcome, const std::string& error_class, int64_t prompt_tokens,
                       int64_t completion_tokens) {
  if (ended_) return;
  ended_ = true;
  const int64_t delivered = deliveredTokens();
  // After a cut the upstream's own usage never arrives, so the delivered count is used.
  const int64_t output = (completion_tokens >= 0 && !cut_) ? completion_tokens : delivered;
  const int64_t input = prompt_tokens >= 0 ? prompt_tokens : facts_.input_tokens;
  if (state_->ledger && facts_.reservation) {
    // The upstream's usage is not trusted to be small, so the sum is saturated and capped.
    state_->ledger->settle(*facts_.reservation, ledgerTokens(addTokens(input, output)),
                           unixSeconds());
    state_->publishUsage(facts_.key_id, facts_.tenant);
  }
  const std::string target_label = "target=\"" + labelValue(facts_.target) + "\"";
  sdk::metricAdd("hfchain_budget_output_tokens_total", target_label, static_cast<double>(output));
  if (prompt_tokens >= 0 && facts_.input_tokens > 0) {
    sdk::metricObserve(
        "hfchain_budget_input_overrun_ratio", target_label,
        static_cast<double>(prompt_tokens) / static_cast<double>(facts_.input_tokens));
  }

  AuditRecord& record = facts_.record;
  record.outcome = outcome;
  record.error_class = error_class;
  if (prompt_tokens >= 0) record.input_tokens = prompt_tokens;
  if (completion_tokens >= 0 && !cut_) record.output_tokens = completion_tokens;
  state_->writeAudit(record, delivered);
}

}  // namespace hfchain::plugins::budget
