// Settings of the retry link: how many attempts, how long to wait between them, which
// failures are retried, and the retry budget. Parsed and validated once per link instance.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::retry {

// The link's decision on a failed attempt.
enum class Action {
  kRetry,     // try again, if attempts, time and budget allow
  kFail,      // return the error to the caller at once
  kFallback,  // return the error unchanged, marked for a fallback link before this one
};

const char* actionName(Action action);

// An inclusive range of HTTP status codes.
struct StatusRange {
  int low = 0;
  int high = 0;
};

// One entry of `on`: when every condition given matches a failure, `action` applies.
struct Rule {
  std::vector<StatusRange> statuses;     // empty: any status
  std::vector<sdk::ErrorClass> classes;  // empty: any error class
  Action action = Action::kFail;
  std::string name;  // "on[2]" or "default rules", for log lines

  bool matches(const sdk::ErrorInfo& error) const;
};

// The settings that apply to one target. Targets without an override use the link's own.
struct Policy {
  int max_attempts = 3;                 // total attempts, the first one included
  int64_t base_ms = 100;                // backoff before the first retry is drawn from [0, base_ms]
  int64_t cap_ms = 10'000;              // largest backoff ceiling
  bool jitter = true;                   // full jitter; false waits the whole ceiling
  int64_t max_retry_after_ms = 60'000;  // a longer Retry-After fails at once
  int64_t max_loading_wait_ms = 120'000;  // a longer "model is loading" estimate fails at once
  std::vector<Rule> rules;                // first match wins; no match means kFail

  // Returns the action for `error` and the rule that chose it.
  Action actionFor(const sdk::ErrorInfo& error, const Rule** matched) const;
  // Returns the backoff ceiling before retry number `retry` (0 for the first retry):
  // min(cap_ms, base_ms * 2^retry).
  int64_t backoffCeilingMs(int retry) const;
};

// Limits retries to a share of the requests seen over a sliding window.
struct BudgetSettings {
  bool enabled = true;
  double ratio = 0.2;                   // retries allowed per request in the window
  int64_t window_ms = 10'000;           // length of the sliding window
  int64_t min_retries_per_window = 10;  // retries always allowed, however few the requests
};

struct RetryConfig {
  Policy policy;                          // the link's own settings
  std::map<std::string, Policy> targets;  // per-target overrides, most specific wins
  BudgetSettings budget;

  // Returns the policy for `target`: its override, or the link's own settings.
  const Policy& policyFor(const std::string& target) const;
};

// Parses the link's settings. Returns nullopt and sets `error` to a message that names the
// key, the value and what is expected.
std::optional<RetryConfig> parseRetryConfig(const nlohmann::json& settings, std::string& error);

// Returns the rules used when `on` is absent. They retry 429, every 5xx, model loading, rate
// limits, connect failures, timeouts, connection resets and streams cut before their first
// event. Everything else fails (validation, auth, not found, cancelled, ...).
std::vector<Rule> defaultRules();

}  // namespace hfchain::plugins::retry
