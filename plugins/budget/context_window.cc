// The overflow policies applied to one request's token counts.
#include "context_window.h"

namespace hfchain::plugins::budget {
namespace {

std::string windowText(int64_t window, const std::string& target) {
  return "the context window of " + std::to_string(window) + " tokens of target \"" + target + "\"";
}

// The message of a request that does not fit, with the change that would make it fit.
std::string overflowMessage(const TargetPolicy& policy, const std::string& target, int64_t window,
                            int64_t input_tokens, std::optional<int64_t> max_new_tokens) {
  const int64_t room = remainingWindow(window, input_tokens);
  const std::string shorten = "shorten the prompt to at most " +
                              std::to_string(remainingWindow(window, policy.min_new_tokens)) +
                              " tokens";
  if (max_new_tokens && room >= policy.min_new_tokens) {
    return "input " + std::to_string(input_tokens) + " tokens + max_new_tokens " +
           std::to_string(*max_new_tokens) + " exceeds " + windowText(window, target) +
           "; lower max_new_tokens to at most " + std::to_string(room) + " or shorten the prompt";
  }
  if (max_new_tokens) {
    return "input " + std::to_string(input_tokens) + " tokens + max_new_tokens " +
           std::to_string(*max_new_tokens) + " exceeds " + windowText(window, target) + "; " +
           shorten;
  }
  return "input " + std::to_string(input_tokens) + " tokens leave " + std::to_string(room) +
         " of " + windowText(window, target) + ", fewer than min_new_tokens " +
         std::to_string(policy.min_new_tokens) + "; " + shorten;
}

}  // namespace

WindowDecision decideWindow(const TargetPolicy& policy, const std::string& target, int64_t window,
                            int64_t input_tokens, std::optional<int64_t> max_new_tokens) {
  WindowDecision decision;
  if (window <= 0) return decision;
  const int64_t requested_new_tokens = max_new_tokens ? *max_new_tokens : policy.min_new_tokens;
  const int64_t room = remainingWindow(window, input_tokens);
  // Compared as a difference, because input + max_new_tokens overflows for a max_new_tokens
  // near INT64_MAX and would then look small enough to fit.
  if (input_tokens <= window && requested_new_tokens <= room) return decision;

  decision.message = overflowMessage(policy, target, window, input_tokens, max_new_tokens);
  decision.reason = "context_window";
  switch (policy.on_context_overflow) {
    case OverflowPolicy::kReject:
      decision.action = WindowDecision::Action::kReject;
      return decision;
    case OverflowPolicy::kFallback:
      decision.action = WindowDecision::Action::kFallback;
      return decision;
    case OverflowPolicy::kClamp:
      if (max_new_tokens && room >= policy.min_new_tokens) {
        decision.action = WindowDecision::Action::kClamp;
        decision.max_new_tokens = room;
        return decision;
      }
      decision.action = WindowDecision::Action::kReject;
      decision.reason = "min_new_tokens";
      // Clamping cannot help, so the message names the minimum that did not fit.
      decision.message = overflowMessage(policy, target, window, input_tokens, std::nullopt);
      return decision;
    case OverflowPolicy::kTruncate:
      decision.action = WindowDecision::Action::kTruncate;
      decision.max_input_tokens = remainingWindow(window, requested_new_tokens);
      if (decision.max_input_tokens < 1) {
        decision.action = WindowDecision::Action::kReject;
        decision.message = "max_new_tokens " + std::to_string(requested_new_tokens) +
                           " leaves no room for " + "any input in " + windowText(window, target) +
                           "; lower max_new_tokens below " + std::to_string(window);
      }
      return decision;
  }
  return decision;
}

}  // namespace hfchain::plugins::budget
