// Settings of the budget link, parsed and validated from the link's JSON settings.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ledger.h"

namespace hfchain::plugins::budget {

// What happens to a request whose input tokens plus max_new_tokens exceed the context window.
enum class OverflowPolicy {
  kReject,    // budget_exceeded, HTTP 400; nothing is sent
  kClamp,     // lower max_new_tokens to what fits
  kTruncate,  // drop the oldest turns, then cut the oldest kept text
  kFallback,  // context_overflow, for a fallback link above to reroute
};

// Returns "reject", "clamp", "truncate" or "fallback".
const char* overflowPolicyName(OverflowPolicy policy);

// How output tokens are counted when the stream is cut at a limit.
enum class OutputCount {
  kAuto,    // kEvents for TGI and hf-serverless prompts, kText otherwise
  kEvents,  // every token event is one token, as TGI's /generate_stream sends them
  kText,    // count the accumulated text with the target's counter
};

// The policy for one target: the link-wide settings with the target's overrides applied.
struct TargetPolicy {
  OverflowPolicy on_context_overflow = OverflowPolicy::kReject;
  // clamp and truncate reject a request when fewer new tokens than this remain.
  int64_t min_new_tokens = 1;
  // Set on requests without max_new_tokens; 0 leaves them without one.
  int64_t default_max_new_tokens = 0;
  // Cap on max_new_tokens, enforced on the stream as well; 0: none.
  int64_t max_output_tokens = 0;
  // Cut the stream at the request's own max_new_tokens, for upstreams that ignore it.
  bool enforce_max_output_tokens = false;
  // Tokens; 0 uses the target's context_window from the config or the host.
  int64_t context_window = 0;
  OutputCount output_count = OutputCount::kAuto;
};

struct BudgetConfig {
  TargetPolicy defaults;
  std::map<std::string, TargetPolicy> targets;  // by target name
  std::vector<BudgetRule> budgets;
  std::string state_file;  // empty: budgets are kept in memory only
  std::string audit_file;  // empty: no audit records

  // Returns the policy of target `name`, or the defaults when it has no overrides.
  const TargetPolicy& policyFor(const std::string& name) const;
};

// Parses the settings; returns null and sets `error` to a message naming the key, the value
// and what is allowed.
std::unique_ptr<BudgetConfig> parseBudgetConfig(const nlohmann::json& settings, std::string& error);

}  // namespace hfchain::plugins::budget
