// Attempts: preparing the copy, calling the rest of the chain, peeking the first event, and
// deciding whether a failure moves the request on.
#include "attempt.h"

#include <algorithm>

namespace hfchain::plugins::fallback {

std::string Attempt::label(const FallbackState& state) const {
  return state.tiers[tier].config.name + "/" + (target.empty() ? std::string("default") : target);
}

std::string Attempt::servedBy() const {
  if (!target.empty()) return target;
  if (response.raw() != nullptr) {
    if (auto header = response.header("x-hfchain-served-by")) return std::string(*header);
  }
  if (has_first) return std::string(first->servedBy());
  return "";
}

std::unique_ptr<Attempt> prepareAttempt(const FallbackState& state, const sdk::Request& original,
                                        size_t tier, const std::string& target) {
  auto attempt = std::make_unique<Attempt>();
  attempt->tier = tier;
  attempt->target = target;
  attempt->request = std::make_unique<sdk::OwnedRequest>(original);
  sdk::Request copy = attempt->request->view();
  const TierConfig& config = state.tiers[tier].config;
  if (!target.empty()) copy.setTarget(target);
  if (!config.model.empty()) copy.setModel(config.model);
  if (config.on.timeout_ms > 0) {
    const int64_t remaining = original.deadlineRemainingMs();
    copy.setDeadlineMs(remaining < 0 ? config.on.timeout_ms
                                     : std::min(remaining, config.on.timeout_ms));
  }
  return attempt;
}

void runAttempt(const FallbackState& state, sdk::Next& next, Attempt& attempt) {
  attempt.started_ms = sdk::nowMs();
  sdk::Request request = attempt.request->view();
  const Tier& tier = state.tiers[attempt.tier];
  attempt.response = tier.chain ? tier.chain->call(request, next) : next(request);
  if (auto handover = attempt.response.header("x-hfchain-handover")) {
    attempt.handover = *handover == "fallback";
  }
  if (auto failure = attempt.response.error()) {
    attempt.failure = std::move(failure);
    return;
  }
  attempt.inner = sdk::takeStream(attempt.response);
  attempt.first = std::make_unique<sdk::Event>(sdk::Event::make());
  attempt.has_first = attempt.inner.next(*attempt.first);
  attempt.first_event_ms = sdk::nowMs() - attempt.started_ms;
  if (!attempt.has_first) {
    attempt.in_stream = true;
    attempt.failure =
        sdk::ErrorInfo{HFC_ERROR_STREAM_INCOMPLETE, 0, "the stream ended before its first event"};
  } else if (attempt.first->isError()) {
    attempt.in_stream = true;
    sdk::ErrorInfo failure;
    failure.error_class = attempt.first->errorClass();
    failure.http_status = static_cast<int>(attempt.first->getInt(HFC_EVENT_ERROR_HTTP_STATUS));
    failure.message = std::string(attempt.first->errorMessage());
    attempt.failure = std::move(failure);
  }
}

bool triggersFallback(const FallbackState& state, const Attempt& attempt) {
  if (!attempt.failure) return false;
  const sdk::ErrorClass error_class = attempt.failure->error_class;
  // A cancelled attempt means the caller is gone, and an invalid request fails everywhere.
  if (error_class == HFC_ERROR_CANCELLED || error_class == HFC_ERROR_INVALID_REQUEST) return false;
  if (attempt.handover) return true;
  // A stream that fails in its first event has sent nothing to the caller, so moving on is
  // safe whatever the class.
  if (attempt.in_stream) return true;
  return state.tiers[attempt.tier].config.on.matches(attempt.failure->http_status, error_class);
}

std::string describeFailure(const sdk::ErrorInfo& failure) {
  std::string out = sdk::errorClassName(failure.error_class);
  if (failure.http_status != 0) out += " (HTTP " + std::to_string(failure.http_status) + ")";
  return out;
}

void noteFallback(const sdk::Request& request, const std::string& from, const std::string& to,
                  const std::string& reason) {
  request.log(HFC_LOG_WARNING, kLogger, "falling back from " + from + " to " + to + ": " + reason);
  sdk::metricAdd("hfchain_fallback_total",
                 "from=\"" + from + "\",to=\"" + to + "\",reason=\"" + reason + "\"");
}

bool Plan::enterNextTier() {
  ++tier_;
  targets_.clear();
  next_target_ = 0;
  if (tier_ >= state_->tiers.size()) {
    tier_ = state_->tiers.size();
    return false;
  }
  const TierConfig& config = state_->tiers[tier_].config;
  if (config.kind == TierKind::kTargets) {
    targets_ = state_->health.order(config.targets);
  } else if (config.kind == TierKind::kPassThrough) {
    targets_.push_back("");
  }
  return true;
}

std::optional<std::string> Plan::takeTarget() {
  if (next_target_ >= targets_.size()) return std::nullopt;
  return targets_[next_target_++];
}

}  // namespace hfchain::plugins::fallback
