// The fallback link: sends a request to ordered tiers of targets and moves on when an attempt
// fails before anything reached the caller. Endpoints are ordered by health score; a tier may
// hedge, serve stored answers or a fixed text, and broken streams may be resumed.
#include <memory>
#include <string>

#include "attempt.h"
#include "fallback_config.h"
#include "fallback_state.h"
#include "hedging.h"
#include "served_stream.h"

namespace hfchain::plugins::fallback {
namespace {

constexpr const char* kServedByHeader = "x-hfchain-served-by";
constexpr const char* kTierHeader = "x-hfchain-tier";

// The walk of one request through the tiers. Lives for one roundTrip call.
class Walk {
 public:
  Walk(std::shared_ptr<FallbackState> state, sdk::Request& request, sdk::Next& next)
      : state_(std::move(state)),
        request_(request),
        next_(next),
        plan_(std::make_unique<Plan>(state_)) {}

  sdk::Response run();

 private:
  enum class TierEnd { kExhausted, kFinal };

  // Runs the targets of the current tier one after another. Sets served_ or returns why
  // the tier ended without it.
  TierEnd runSequential();
  TierEnd runHedged(int64_t after_ms);
  std::unique_ptr<Attempt> start(const std::string& target);
  // Records a failed attempt and returns whether it moves the request on.
  bool recordFailure(std::unique_ptr<Attempt> attempt);
  std::optional<sdk::Response> stopReason();

  sdk::Response serve(std::unique_ptr<Attempt> attempt, std::shared_ptr<HedgeRace> race);
  sdk::Response serveFixed(std::vector<std::string> tokens, std::string finish_reason,
                           const std::string& served_by);
  sdk::Response fail();
  void noteMove(const std::string& to);

  std::shared_ptr<FallbackState> state_;
  sdk::Request& request_;
  sdk::Next& next_;
  std::unique_ptr<Plan> plan_;
  std::string cache_key_;
  std::unique_ptr<Attempt> last_failure_;
  std::string pending_from_;    // the attempt a fallback moves away from, for the log
  std::string pending_reason_;  // its error class, or "handover"
  int attempts_ = 0;
  std::optional<sdk::Response> served_;
};

sdk::Response Walk::run() {
  FallbackState& state = *state_;
  state.budget.recordRequest(sdk::nowMs());
  if (state.cache != nullptr) cache_key_ = cacheKey(request_);
  while (plan_->enterNextTier()) {
    const Tier& tier = state.tiers[plan_->tier()];
    if (auto stop = stopReason()) return std::move(*stop);
    switch (tier.config.kind) {
      case TierKind::kCache: {
        std::optional<CachedAnswer> answer = state.cache->find(cache_key_, sdk::nowMs());
        sdk::metricAdd("hfchain_fallback_cache_total",
                       answer ? "result=\"hit\"" : "result=\"miss\"");
        if (!answer) {
          request_.log(HFC_LOG_INFO, kLogger,
                       "tier " + tier.config.name + " has no stored answer for this request");
          continue;
        }
        noteMove(tier.config.name + "/cache");
        return serveFixed(std::move(answer->tokens), std::move(answer->finish_reason), "cache");
      }
      case TierKind::kLocal:
        noteMove(tier.config.name + "/local");
        return serveFixed({tier.config.local_answer}, "stop", "local");
      case TierKind::kTargets:
      case TierKind::kPassThrough: {
        TierEnd end = tier.config.hedge_after_ms >= 0 ? runHedged(tier.config.hedge_after_ms)
                                                      : runSequential();
        if (served_) return std::move(*served_);
        if (end == TierEnd::kFinal) return fail();
        break;
      }
    }
  }
  return fail();
}

std::optional<sdk::Response> Walk::stopReason() {
  if (request_.cancelled()) {
    return sdk::Response::error(
        sdk::ErrorInfo{HFC_ERROR_CANCELLED, 0, "the request was cancelled during fallback"});
  }
  if (request_.deadlineRemainingMs() == 0) {
    return sdk::Response::error(sdk::ErrorInfo{HFC_ERROR_TIMEOUT, 0,
                                               "the request deadline passed before tier " +
                                                   state_->tiers[plan_->tier()].config.name +
                                                   " could be tried"});
  }
  return std::nullopt;
}

void Walk::noteMove(const std::string& to) {
  if (pending_from_.empty()) return;
  noteFallback(request_, pending_from_, to, pending_reason_);
  pending_from_.clear();
}

std::unique_ptr<Attempt> Walk::start(const std::string& target) {
  std::unique_ptr<Attempt> attempt = prepareAttempt(*state_, request_, plan_->tier(), target);
  noteMove(attempt->label(*state_));
  if (attempts_++ > 0) state_->budget.recordExtraAttempt(sdk::nowMs());
  return attempt;
}

bool Walk::recordFailure(std::unique_ptr<Attempt> attempt) {
  const sdk::ErrorInfo& failure = *attempt->failure;
  if (!attempt->target.empty() && failure.error_class != HFC_ERROR_CANCELLED) {
    state_->health.recordFailure(attempt->target);
    sdk::metricSet("hfchain_fallback_health_score", "target=\"" + attempt->target + "\"",
                   state_->health.score(attempt->target));
  }
  const bool moves_on = triggersFallback(*state_, *attempt);
  const std::string label = attempt->label(*state_);
  if (moves_on) {
    pending_from_ = label;
    pending_reason_ = attempt->handover ? "handover" : sdk::errorClassName(failure.error_class);
    request_.log(HFC_LOG_INFO, kLogger,
                 "attempt on " + label + " failed with " + describeFailure(failure) +
                     (attempt->in_stream ? " in its first event" : "") + ": " + failure.message);
  } else {
    request_.log(HFC_LOG_INFO, kLogger,
                 "attempt on " + label + " failed with " + describeFailure(failure) +
                     ", which is not a fallback trigger of tier " +
                     state_->tiers[attempt->tier].config.name + "; returning it");
  }
  last_failure_ = std::move(attempt);
  return moves_on;
}

Walk::TierEnd Walk::runSequential() {
  while (std::optional<std::string> target = plan_->takeTarget()) {
    if (auto stop = stopReason()) {
      served_ = std::move(*stop);
      return TierEnd::kFinal;
    }
    std::unique_ptr<Attempt> attempt = start(*target);
    runAttempt(*state_, next_, *attempt);
    if (!attempt->failure) {
      served_ = serve(std::move(attempt), nullptr);
      return TierEnd::kFinal;
    }
    if (!recordFailure(std::move(attempt))) return TierEnd::kFinal;
  }
  return TierEnd::kExhausted;
}

Walk::TierEnd Walk::runHedged(int64_t after_ms) {
  const std::string& tier_name = state_->tiers[plan_->tier()].config.name;
  auto race = std::make_shared<HedgeRace>(state_, next_);
  std::optional<std::string> first = plan_->takeTarget();
  if (!first) return TierEnd::kExhausted;
  race->launch(start(*first));
  int64_t hedge_at = sdk::nowMs() + after_ms;
  bool may_hedge = true;
  while (true) {
    const int64_t until = may_hedge && plan_->hasTarget() ? hedge_at : -1;
    std::unique_ptr<Attempt> done = race->next(request_, until);
    if (!done) {
      if (request_.cancelled()) {
        race->close();
        served_ = sdk::Response::error(
            sdk::ErrorInfo{HFC_ERROR_CANCELLED, 0, "the request was cancelled during fallback"});
        return TierEnd::kFinal;
      }
      if (until < 0) {
        // Every attempt failed; the next target, if any, goes without waiting.
        if (!plan_->hasTarget()) return TierEnd::kExhausted;
        race->launch(start(*plan_->takeTarget()));
        hedge_at = sdk::nowMs() + after_ms;
        continue;
      }
      if (sdk::nowMs() < hedge_at) {
        may_hedge = false;  // the caller's deadline cut the wait short
        continue;
      }
      if (!state_->budget.tryAcquireHedge(sdk::nowMs())) {
        request_.log(HFC_LOG_INFO, kLogger,
                     "the hedge budget is used up; tier " + tier_name + " waits without hedging");
        sdk::metricAdd("hfchain_fallback_hedges_refused_total", "tier=\"" + tier_name + "\"");
        may_hedge = false;
        continue;
      }
      std::unique_ptr<Attempt> hedge =
          prepareAttempt(*state_, request_, plan_->tier(), *plan_->takeTarget());
      request_.log(HFC_LOG_INFO, kLogger,
                   "no first event within " + std::to_string(after_ms) + " ms in tier " +
                       tier_name + "; hedging to " + hedge->label(*state_));
      sdk::metricAdd("hfchain_fallback_hedges_total", "tier=\"" + tier_name + "\"");
      race->launch(std::move(hedge));
      hedge_at = sdk::nowMs() + after_ms;
      continue;
    }
    if (!done->failure) {
      race->close();
      if (race->running() > 0) {
        request_.log(HFC_LOG_INFO, kLogger,
                     done->label(*state_) + " answered first; cancelling the other attempts");
      }
      served_ = serve(std::move(done), race);
      return TierEnd::kFinal;
    }
    if (!recordFailure(std::move(done))) {
      race->close();
      return TierEnd::kFinal;
    }
    if (race->running() == 0) {
      if (!plan_->hasTarget()) return TierEnd::kExhausted;
      race->launch(start(*plan_->takeTarget()));
      hedge_at = sdk::nowMs() + after_ms;
    }
  }
}

sdk::Response Walk::serve(std::unique_ptr<Attempt> attempt, std::shared_ptr<HedgeRace> race) {
  FallbackState& state = *state_;
  if (!attempt->target.empty()) {
    state.health.recordSuccess(attempt->target, static_cast<double>(attempt->first_event_ms));
    sdk::metricSet("hfchain_fallback_health_score", "target=\"" + attempt->target + "\"",
                   state.health.score(attempt->target));
  }
  const std::string tier_name = state.tiers[attempt->tier].config.name;
  sdk::metricAdd("hfchain_fallback_served_total", "tier=\"" + tier_name + "\"");
  sdk::Response outer = std::move(attempt->response);
  outer.setHeader(kServedByHeader, attempt->servedBy());
  outer.setHeader(kTierHeader, tier_name);
  ServeContext context;
  context.state = state_;
  context.cache_key = cache_key_;
  context.race = std::move(race);
  if (state.config.on_broken_stream == BrokenStreamPolicy::kResume) {
    context.next = std::make_unique<sdk::OwnedNext>(next_);
    context.original = std::make_unique<sdk::OwnedRequest>(request_);
    context.plan = std::move(plan_);
  }
  return sdk::wrap(std::move(outer),
                   std::make_unique<ServedStream>(std::move(context), std::move(attempt)));
}

sdk::Response Walk::serveFixed(std::vector<std::string> tokens, std::string finish_reason,
                               const std::string& served_by) {
  const std::string tier_name = state_->tiers[plan_->tier()].config.name;
  sdk::metricAdd("hfchain_fallback_served_total", "tier=\"" + tier_name + "\"");
  sdk::Response response = sdk::respond(
      std::make_unique<ReplayStream>(std::move(tokens), std::move(finish_reason), served_by));
  response.setHeader(kServedByHeader, served_by);
  response.setHeader(kTierHeader, tier_name);
  return response;
}

sdk::Response Walk::fail() {
  if (!last_failure_) {
    return sdk::Response::error(sdk::ErrorInfo{
        HFC_ERROR_INTERNAL, 0, "no tier of the fallback link could answer the request"});
  }
  Attempt& attempt = *last_failure_;
  std::string served_by = attempt.servedBy();
  sdk::Response response =
      attempt.in_stream ? sdk::Response::error(*attempt.failure) : std::move(attempt.response);
  if (!served_by.empty()) response.setHeader(kServedByHeader, served_by);
  response.setHeader(kTierHeader, state_->tiers[attempt.tier].config.name);
  return response;
}

class FallbackLink : public sdk::Link {
 public:
  static std::unique_ptr<FallbackLink> create(const nlohmann::json& settings, std::string& error) {
    std::unique_ptr<FallbackConfig> config = parseFallbackConfig(settings, error);
    if (!config) return nullptr;
    auto state = std::make_shared<FallbackState>(*config);
    for (size_t i = 0; i < config->tiers.size(); ++i) {
      Tier tier;
      tier.config = config->tiers[i];
      if (!tier.config.links.is_null()) {
        tier.chain = sdk::NestedChain::build(tier.config.links, error);
        if (!tier.chain) {
          error = "tiers[" + std::to_string(i) + "].links: " + error;
          return nullptr;
        }
      }
      if (tier.config.kind == TierKind::kCache) {
        tier.cache = std::make_unique<ResponseCache>(tier.config.cache.max_entries,
                                                     tier.config.cache.ttl_ms);
      }
      state->tiers.push_back(std::move(tier));
    }
    for (Tier& tier : state->tiers) {
      if (tier.cache) state->cache = tier.cache.get();
    }
    auto link = std::make_unique<FallbackLink>();
    link->state_ = std::move(state);
    return link;
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    Walk walk(state_, request, next);
    return walk.run();
  }

 private:
  std::shared_ptr<FallbackState> state_;
};

}  // namespace
}  // namespace hfchain::plugins::fallback

HFCHAIN_PLUGIN("fallback", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::fallback::FallbackLink, "fallback",
                            "tries ordered tiers of targets, a cache and a last answer"))
