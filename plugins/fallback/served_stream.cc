// Event handling of served streams: served_by, cache recording, broken-stream policy.
#include "served_stream.h"

namespace hfchain::plugins::fallback {
namespace {

sdk::ErrorInfo errorOf(const sdk::Event& event) {
  sdk::ErrorInfo error;
  error.error_class = event.errorClass();
  error.http_status = static_cast<int>(event.getInt(HFC_EVENT_ERROR_HTTP_STATUS));
  error.message = std::string(event.errorMessage());
  return error;
}

}  // namespace

ServedStream::ServedStream(ServeContext context, std::unique_ptr<Attempt> attempt)
    : context_(std::move(context)), attempt_(std::move(attempt)) {
  served_by_ = attempt_->servedBy();
}

bool ServedStream::readEvent(sdk::Event& out) {
  if (held_finish_) {
    out.copyFrom(*held_finish_);
    held_finish_.reset();
    return true;
  }
  if (first_pending_) {
    first_pending_ = false;
    out.copyFrom(*attempt_->first);
    return true;
  }
  if (attempt_->inner.next(out)) return true;
  out.setError(sdk::ErrorInfo{HFC_ERROR_STREAM_INCOMPLETE, 0,
                              "the stream of " + attempt_->label(*context_.state) +
                                  " ended without a finish or error event"});
  return true;
}

bool ServedStream::next(sdk::Event& out) {
  if (done_) return false;
  while (true) {
    readEvent(out);
    if (out.isToken()) {
      if (deliverToken(out)) return true;
      continue;  // the trimmer holds the text back for now
    }
    if (out.isFinish()) {
      if (trimmer_) {
        std::string rest = trimmer_->finish();
        if (!rest.empty()) {
          // Deliver the text held back first, then the finish.
          held_finish_ = std::make_unique<sdk::Event>(sdk::Event::make());
          held_finish_->copyFrom(out);
          out.setKind(HFC_EVENT_TOKEN);
          out.setFinishReason("");
          out.setGeneratedText("");
          out.setText(rest);
          delivered_ += rest;
          ++tokens_delivered_;
          out.set(HFC_EVENT_SERVED_BY, served_by_);
          return true;
        }
      }
      deliverFinish(out);
      done_ = true;
      return true;
    }
    // An error after the first event: some text may have reached the caller already.
    sdk::ErrorInfo failure = errorOf(out);
    FallbackState& state = *context_.state;
    if (!attempt_->target.empty() && failure.error_class != HFC_ERROR_CANCELLED) {
      state.health.recordFailure(attempt_->target);
    }
    if (state.config.on_broken_stream == BrokenStreamPolicy::kResume &&
        failure.error_class != HFC_ERROR_CANCELLED && resume(failure)) {
      continue;
    }
    attempt_->request->view().log(HFC_LOG_WARNING, kLogger,
                                  "the stream of " + attempt_->label(state) + " broke after " +
                                      std::to_string(tokens_delivered_) + " tokens with " +
                                      describeFailure(failure) +
                                      "; delivering the error without splicing another answer");
    sdk::metricAdd(
        "hfchain_fallback_broken_streams_total",
        "target=\"" + served_by_ + "\",policy=\"" +
            (state.config.on_broken_stream == BrokenStreamPolicy::kResume ? "resume" : "error") +
            "\"");
    out.set(HFC_EVENT_SERVED_BY, served_by_);
    done_ = true;
    return true;
  }
}

bool ServedStream::deliverToken(sdk::Event& out) {
  std::string text(out.text());
  if (trimmer_) {
    std::string kept = trimmer_->feed(text);
    if (kept.empty()) return false;
    if (kept != text) out.setText(kept);
    text = std::move(kept);
  }
  delivered_ += text;
  ++tokens_delivered_;
  if (!context_.cache_key.empty()) token_texts_.push_back(text);
  out.set(HFC_EVENT_SERVED_BY, served_by_);
  return true;
}

void ServedStream::deliverFinish(sdk::Event& out) {
  out.set(HFC_EVENT_SERVED_BY, served_by_);
  if (resumed_) {
    // The continuation's own text lacks the part delivered before the break.
    out.setGeneratedText(delivered_);
    return;
  }
  FallbackState& state = *context_.state;
  if (!context_.cache_key.empty() && state.cache != nullptr) {
    state.cache->store(context_.cache_key,
                       CachedAnswer{std::move(token_texts_), std::string(out.finishReason())},
                       sdk::nowMs());
    sdk::metricAdd("hfchain_fallback_cache_total", "result=\"store\"");
  }
}

bool ServedStream::resume(const sdk::ErrorInfo& failure) {
  if (!context_.plan || !context_.next || !context_.original) return false;
  FallbackState& state = *context_.state;
  sdk::Request original = context_.original->view();
  std::string from = attempt_->label(state);
  sdk::Next next = context_.next->view();
  while (true) {
    std::optional<std::string> target = context_.plan->takeTarget();
    if (!target) {
      if (!context_.plan->enterNextTier()) return false;
      continue;  // a cache or local tier has no targets: it cannot continue a stream
    }
    if (original.cancelled()) return false;
    std::unique_ptr<Attempt> attempt =
        prepareAttempt(state, original, context_.plan->tier(), *target);
    sdk::Request copy = attempt->request->view();
    buildContinuation(copy, delivered_, tokens_delivered_, state.config.resume);
    const std::string to = attempt->label(state);
    original.log(HFC_LOG_WARNING, kLogger,
                 "the stream of " + from + " broke after " + std::to_string(tokens_delivered_) +
                     " tokens with " + describeFailure(failure) + "; asking " + to +
                     " to continue it");
    state.budget.recordExtraAttempt(sdk::nowMs());
    runAttempt(state, next, *attempt);
    if (attempt->failure) {
      if (!attempt->target.empty() && attempt->failure->error_class != HFC_ERROR_CANCELLED) {
        state.health.recordFailure(attempt->target);
      }
      original.log(HFC_LOG_WARNING, kLogger,
                   "continuing on " + to + " failed with " + describeFailure(*attempt->failure));
      from = to;
      continue;
    }
    if (!attempt->target.empty()) {
      state.health.recordSuccess(attempt->target, static_cast<double>(attempt->first_event_ms));
    }
    sdk::metricAdd("hfchain_fallback_resumes_total", "from=\"" + from + "\",to=\"" + to + "\"");
    attempt_ = std::move(attempt);
    served_by_ = attempt_->servedBy();
    first_pending_ = true;
    trimmer_.emplace(delivered_, state.config.resume.min_overlap_chars);
    resumed_ = true;
    return true;
  }
}

bool ReplayStream::next(sdk::Event& out) {
  if (done_) return false;
  if (position_ < tokens_.size()) {
    out.setKind(HFC_EVENT_TOKEN);
    out.setText(tokens_[position_++]);
  } else {
    std::string text;
    for (const std::string& token : tokens_) text += token;
    out.setKind(HFC_EVENT_FINISH);
    out.setFinishReason(finish_reason_);
    out.setGeneratedText(text);
    done_ = true;
  }
  out.set(HFC_EVENT_SERVED_BY, served_by_);
  return true;
}

}  // namespace hfchain::plugins::fallback
