// The state one fallback link instance shares with its streams and hedging threads, which
// may outlive a roundTrip call.
#pragma once

#include <memory>
#include <vector>

#include "fallback_config.h"
#include "health_scores.h"
#include "hedge_budget.h"
#include "hfchain/sdk/link.h"
#include "response_cache.h"

namespace hfchain::plugins::fallback {

namespace sdk = hfchain::sdk;

// The logger name of every message of this link.
inline constexpr const char* kLogger = "fallback";

struct Tier {
  TierConfig config;
  std::unique_ptr<sdk::NestedChain> chain;  // the tier's own links; null when it has none
  std::unique_ptr<ResponseCache> cache;     // set in the cache tier only
};

struct FallbackState {
  explicit FallbackState(const FallbackConfig& config_in)
      : config(config_in), health(config_in.health), budget(config_in.hedge_budget) {}

  FallbackConfig config;
  std::vector<Tier> tiers;
  HealthScores health;
  HedgeBudget budget;
  ResponseCache* cache = nullptr;  // the cache tier's store, or null
};

using StatePtr = std::shared_ptr<const FallbackState>;

}  // namespace hfchain::plugins::fallback
