// Prompt truncation: turn dropping and start-of-text cuts, each found by a binary search
// over the candidates so that a long chat costs O(log n) counts.
#include "truncation.h"

#include <string_view>

#include "text_boundaries.h"

namespace hfchain::plugins::budget {
namespace {

// Returns the index of the first position in `positions` (ascending) for which `fits` is
// true, assuming that once true it stays true; nullopt when none is.
std::optional<size_t> firstFitting(const std::vector<size_t>& positions,
                                   const std::function<bool(size_t)>& fits) {
  size_t lo = 0;
  size_t hi = positions.size();
  std::optional<size_t> found;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (fits(positions[mid])) {
      found = mid;
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return found;
}

// Returns only the positions of `positions` that are greater than `base`.
std::vector<size_t> after(const std::vector<size_t>& positions, size_t base) {
  std::vector<size_t> out;
  for (size_t position : positions) {
    if (position > base) out.push_back(position);
  }
  return out;
}

struct Cut {
  size_t offset = 0;
  CutLevel level = CutLevel::kNone;
};

// Finds the smallest cut of the start of `text` for which `fits(offset)` holds: sentence
// starts first, then word starts after the last sentence start, then code point starts after
// the last word start.
std::optional<Cut> findCut(std::string_view text, const std::function<bool(size_t)>& fits) {
  const std::vector<size_t> sentences = sentenceStarts(text);
  if (std::optional<size_t> index = firstFitting(sentences, fits)) {
    return Cut{sentences[*index], CutLevel::kSentence};
  }
  const size_t last_sentence = sentences.empty() ? 0 : sentences.back();
  const std::vector<size_t> words = after(wordStarts(text), last_sentence);
  if (std::optional<size_t> index = firstFitting(words, fits)) {
    return Cut{words[*index], CutLevel::kWord};
  }
  const size_t last_word = words.empty() ? last_sentence : words.back();
  const std::vector<size_t> characters = after(codePointStarts(text), last_word);
  if (std::optional<size_t> index = firstFitting(characters, fits)) {
    return Cut{characters[*index], CutLevel::kCharacter};
  }
  return std::nullopt;
}

// Returns the index of the message whose start may be cut: the last user message, or the
// last message when there is none.
size_t lastUserIndex(const std::vector<PromptMessage>& messages) {
  for (size_t i = messages.size(); i > 0; --i) {
    if (messages[i - 1].role == "user") return i - 1;
  }
  return messages.size() - 1;
}

// Returns the units that may be dropped, oldest first, as indices of `messages`. A unit is a
// user message with the assistant and tool messages that follow it up to the next user
// message, so that dropping whole units keeps the roles alternating, as chat templates such
// as Gemma's require. Non-system messages before the first user message form a unit of their
// own. System messages and the kept last turn (from `kept_from`) belong to no unit.
std::vector<std::vector<size_t>> droppableTurns(const std::vector<PromptMessage>& messages,
                                                size_t kept_from, bool has_user) {
  std::vector<std::vector<size_t>> turns;
  for (size_t i = 0; i < kept_from; ++i) {
    if (messages[i].role == "system") continue;
    // Without any user message there are no turns to keep together.
    const bool starts_turn = !has_user || messages[i].role == "user" || turns.empty();
    if (starts_turn) turns.emplace_back();
    turns.back().push_back(i);
  }
  return turns;
}

// Returns the indices of the messages in the first `drop` turns, ascending.
std::vector<size_t> firstTurnsIndices(const std::vector<std::vector<size_t>>& turns, size_t drop) {
  std::vector<size_t> indices;
  for (size_t turn = 0; turn < drop; ++turn) {
    indices.insert(indices.end(), turns[turn].begin(), turns[turn].end());
  }
  return indices;
}

Prompt without(const Prompt& prompt, const std::vector<size_t>& dropped) {
  Prompt out;
  size_t next_dropped = 0;
  for (size_t i = 0; i < prompt.messages.size(); ++i) {
    if (next_dropped < dropped.size() && dropped[next_dropped] == i) {
      ++next_dropped;
      continue;
    }
    out.messages.push_back(prompt.messages[i]);
  }
  return out;
}

}  // namespace

const char* cutLevelName(CutLevel level) {
  switch (level) {
    case CutLevel::kNone:
      return "none";
    case CutLevel::kSentence:
      return "sentence";
    case CutLevel::kWord:
      return "word";
    case CutLevel::kCharacter:
      return "character";
  }
  return "none";
}

TruncationResult truncatePrompt(const Prompt& prompt, int64_t max_tokens,
                                const PromptCounter& count) {
  TruncationResult result;
  result.prompt = prompt;
  result.tokens = count(prompt);
  if (result.tokens <= max_tokens) {
    result.fits = true;
    return result;
  }

  // The turns that may be dropped, oldest first.
  std::vector<std::vector<size_t>> turns;
  size_t cut_index = 0;
  if (prompt.isChat()) {
    cut_index = lastUserIndex(prompt.messages);
    const bool has_user = prompt.messages[cut_index].role == "user";
    turns = droppableTurns(prompt.messages, cut_index, has_user);
  }
  if (!turns.empty()) {
    std::vector<size_t> drop_counts;
    for (size_t drop = 1; drop <= turns.size(); ++drop) drop_counts.push_back(drop);
    std::optional<size_t> index = firstFitting(drop_counts, [&](size_t drop) {
      return count(without(prompt, firstTurnsIndices(turns, drop))) <= max_tokens;
    });
    const size_t drop = index ? drop_counts[*index] : turns.size();
    result.dropped = firstTurnsIndices(turns, drop);
    result.prompt = without(prompt, result.dropped);
    if (index) {
      // The last probe of the search need not be the result, so the result is recounted.
      result.tokens = count(result.prompt);
      result.fits = result.tokens <= max_tokens;
      if (result.fits) return result;
    }
  }

  // Cut the start of the last user message (or of the raw prompt) in the kept prompt.
  Prompt kept = result.prompt;
  std::string* text = &kept.inputs;
  size_t kept_cut_index = 0;
  if (kept.isChat()) {
    kept_cut_index = lastUserIndex(kept.messages);
    text = &kept.messages[kept_cut_index].content;
  }
  const std::string original = *text;
  auto suffixFits = [&](size_t offset) {
    *text = original.substr(offset);
    return count(kept) <= max_tokens;
  };
  std::optional<Cut> cut = findCut(original, suffixFits);
  if (!cut) {
    *text = std::string();
    result.tokens = count(kept);
    result.fits = false;
    return result;
  }
  *text = original.substr(cut->offset);
  result.prompt = kept;
  result.tokens = count(kept);
  result.fits = result.tokens <= max_tokens;
  result.cut_message = prompt.isChat() ? cut_index : 0;
  result.cut_bytes = cut->offset;
  result.cut_level = cut->level;
  return result;
}

}  // namespace hfchain::plugins::budget
