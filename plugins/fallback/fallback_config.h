// Settings of the fallback link, parsed and validated from the link's JSON settings.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace hfchain::plugins::fallback {

// When a failed attempt moves the request on to the next endpoint of its tier, or to the
// next tier.
struct Triggers {
  std::set<int> statuses;         // exact HTTP statuses, e.g. 429
  std::bitset<6> status_classes;  // index 4 for "4xx", 5 for "5xx"
  std::bitset<32> error_classes;  // indexed by hfc_error_class
  int64_t timeout_ms = 0;         // the deadline of each attempt; 0: none

  // Returns whether a failure with this HTTP status (0: none) and class triggers.
  bool matches(int http_status, int error_class) const;
};

enum class TierKind {
  kTargets,      // calls the rest of the chain once per target, best health score first
  kPassThrough,  // calls the rest of the chain once with the caller's own target
  kCache,        // answers from answers stored earlier
  kLocal,        // answers with a fixed text
};

struct CacheSettings {
  size_t max_entries = 1000;
  int64_t ttl_ms = 600'000;
};

struct TierConfig {
  std::string name;
  TierKind kind = TierKind::kTargets;
  std::vector<std::string> targets;
  std::string model;  // overrides the request's model for this tier; empty: keep it
  Triggers on;
  int64_t hedge_after_ms = -1;  // -1: no hedging
  nlohmann::json links;         // nested links in the config's chain form; null: none
  CacheSettings cache;
  std::string local_answer;
};

// The health score of an endpoint is latency_weight * (EWMA of the time to the first event,
// in seconds) + error_weight * (EWMA of the failure rate, 0..1). Lower is better.
struct HealthSettings {
  double latency_weight = 1.0;
  double error_weight = 10.0;
  double alpha = 0.3;  // weight of the newest sample in both averages
};

// Hedges and extra attempts together may reach min_per_window + ratio * requests within the
// last window_ms.
struct BudgetSettings {
  double ratio = 0.1;
  int64_t window_ms = 10'000;
  int64_t min_per_window = 1;
};

enum class BrokenStreamPolicy { kError, kResume };

struct ResumeSettings {
  // The user message appended after the partial assistant message of a chat request; empty:
  // none, for servers that continue a final assistant message by themselves.
  std::string chat_prompt =
      "Continue your previous answer exactly where it stopped. Do not repeat any of it.";
  // The shortest repeated text that is trimmed when a continuation starts by repeating the
  // end of what was delivered; a full restart is trimmed whatever its length.
  size_t min_overlap_chars = 8;
};

struct FallbackConfig {
  std::vector<TierConfig> tiers;
  HealthSettings health;
  BudgetSettings hedge_budget;
  BrokenStreamPolicy on_broken_stream = BrokenStreamPolicy::kError;
  ResumeSettings resume;
};

// Parses the settings, or returns null and sets `error` to a message naming the key, the value
// and what is expected.
std::unique_ptr<FallbackConfig> parseFallbackConfig(const nlohmann::json& settings,
                                                    std::string& error);

// Returns the triggers used when a tier has no `on` setting.
Triggers defaultTriggers();

}  // namespace hfchain::plugins::fallback
