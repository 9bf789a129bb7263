// Truncation of a prompt to a token limit: drops the oldest turns of a chat, then cuts the
// start of the text that is left. Independent of the host, so that it is tested with any
// counting function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hfchain::plugins::budget {

struct PromptMessage {
  std::string role;
  std::string content;
  bool operator==(const PromptMessage&) const = default;
};

// A chat (messages) or, when messages is empty, a raw prompt (inputs).
struct Prompt {
  std::vector<PromptMessage> messages;
  std::string inputs;
  bool isChat() const { return !messages.empty(); }
};

// Returns the input tokens of a prompt as the target's model sees them.
using PromptCounter = std::function<int64_t(const Prompt&)>;

// Where a cut was made, from the finest level that was needed.
enum class CutLevel { kNone, kSentence, kWord, kCharacter };

// Returns "none", "sentence", "word" or "character".
const char* cutLevelName(CutLevel level);

struct TruncationResult {
  bool fits = false;            // false: even the shortest prompt allowed is over the limit
  Prompt prompt;                // the truncated prompt when `fits`
  int64_t tokens = 0;           // count of `prompt`; of the shortest attempt when not `fits`
  std::vector<size_t> dropped;  // indices of the original messages dropped, ascending
  // Index of the original message whose start was cut; 0 for a raw prompt. Unset: no cut.
  std::optional<size_t> cut_message;
  size_t cut_bytes = 0;  // bytes removed from the start of that text
  CutLevel cut_level = CutLevel::kNone;
};

// Shortens `prompt` until `count` returns at most `max_tokens`.
//
// A chat keeps every system message and its last turn: the last user message and the
// messages after it (the last message alone when no message has role user). The turns before
// it are dropped whole, oldest first: a turn is a user message with the assistant and tool
// messages that answer it, so after the system messages the chat still starts with a user
// message and the roles still alternate when they did before. When the kept messages are
// still over the limit, the start of the last user message (or of a raw prompt) is cut:
// whole sentences first, and when even its last sentence is too long, whole words of that
// sentence, then code points. System messages are never cut. Cuts fall on code point
// starts, so no UTF-8 sequence is split.
//
// NOTE: the search for the number of turns to drop and for the cut position is a binary
// search, which assumes that a shorter prompt never counts more tokens. A tokenizer for
// which that fails can make it drop or cut more than the minimum, never less: the result
// is always checked with `count`.
TruncationResult truncatePrompt(const Prompt& prompt, int64_t max_tokens,
                                const PromptCounter& count);

}  // namespace hfchain::plugins::budget
