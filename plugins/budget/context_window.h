// The context window check: whether a request's input tokens and max_new_tokens fit its
// target's window, and what the target's overflow policy does when they do not.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "budget_config.h"

namespace hfchain::plugins::budget {

struct WindowDecision {
  enum class Action {
    kSend,      // fits, or the window is unknown: send as it is
    kClamp,     // set max_new_tokens to `max_new_tokens`, then send
    kTruncate,  // shorten the prompt to at most `max_input_tokens`, then send
    kReject,    // budget_exceeded with `message`
    kFallback,  // context_overflow with `message`
  };
  Action action = Action::kSend;
  int64_t max_new_tokens = 0;    // for kClamp
  int64_t max_input_tokens = 0;  // for kTruncate
  std::string message;           // for kReject and kFallback; also the reason of kClamp
  std::string reason;            // metric label of a rejection: context_window, min_new_tokens
};

// Returns a + b for token counts that are not negative, saturated at INT64_MAX, so that a
// max_new_tokens near INT64_MAX cannot wrap a sum into a small or negative count.
inline int64_t addTokens(int64_t a, int64_t b) {
  if (a < 0) a = 0;
  if (b < 0) b = 0;
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

// Largest token count reserved or settled in the ledger: far above any budget's limit (at
// most 10^12 tokens), so a larger request is still rejected, yet small enough that the
// ledger's sums of used, reserved and requested tokens cannot overflow.
inline constexpr int64_t kMaxLedgerTokens = 1'000'000'000'000'000;

// Returns `tokens` capped at kMaxLedgerTokens.
inline int64_t ledgerTokens(int64_t tokens) {
  return tokens > kMaxLedgerTokens ? kMaxLedgerTokens : tokens;
}

// Returns the tokens of `window` left after `input_tokens`, 0 when the input fills it.
inline int64_t remainingWindow(int64_t window, int64_t input_tokens) {
  return input_tokens >= window ? 0 : window - input_tokens;
}

// Decides for `input_tokens` and the request's max_new_tokens (nullopt when it has none)
// against a window of `window` tokens (0: unknown, always kSend). A request without
// max_new_tokens fits when min_new_tokens still fit after its input. Counts must not be
// negative; any value up to INT64_MAX is compared without overflow.
WindowDecision decideWindow(const TargetPolicy& policy, const std::string& target, int64_t window,
                            int64_t input_tokens, std::optional<int64_t> max_new_tokens);

}  // namespace hfchain::plugins::budget
