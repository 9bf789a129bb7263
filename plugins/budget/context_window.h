// The context window check: whether a request's input tokens and max_new_tokens fit its
// target's window, and what the target's overflow policy does when they do not.
#pragma once

#include <cstdint>
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

// Decides for `input_tokens` and the request's max_new_tokens (nullopt when it has none)
// against a window of `window` tokens (0: unknown, always kSend). A request without
// max_new_tokens fits when min_new_tokens still fit after its input.
WindowDecision decideWindow(const TargetPolicy& policy, const std::string& target, int64_t window,
                            int64_t input_tokens, std::optional<int64_t> max_new_tokens);

}  // namespace hfchain::plugins::budget
