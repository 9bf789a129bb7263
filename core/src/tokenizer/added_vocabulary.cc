// Byte trie over the added tokens.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace hfchain::tokenizer_detail {

void AddedTokenMatcher::add(const AddedToken& token) {
  if (token.content.empty()) return;
  auto index = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
  std::size_t node = 0;
  for (char c : token.content) {
    auto byte = static_cast<unsigned char>(c);
    int32_t child = -1;
    for (const auto& [label, target] : nodes_[node].children) {
      if (label == byte) child = target;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(byte, child);
      nodes_.emplace_back();
    }
    node = static_cast<std::size_t>(child);
  }
  // A duplicate content keeps the first token, as the first pattern wins in the Rust matcher.
  if (nodes_[node].token_index < 0) nodes_[node].token_index = index;
}

std::pair<int32_t, std::size_t> AddedTokenMatcher::longestAt(std::string_view text,
                                                             std::size_t pos) const {
  std::pair<int32_t, std::size_t> best{-1, pos};
  std::size_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    auto byte = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [label, target] : nodes_[node].children) {
      if (label == byte) {
        child = target;
        break;
      }
    }
    if (child < 0) break;
    node = static_cast<std::size_t>(child);
    if (nodes_[node].token_index >= 0) best = {nodes_[node].token_index, i + 1};
  }
  return best;
}

namespace {

// The last code point before end, or 0 at the start of the text.
char32_t codePointBefore(std::string_view text, std::size_t end) {
  if (end == 0) return 0;
  std::size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return nextCodePoint(text, start);
}

// Rust's is_word_character check in single_word matching: alphanumeric or underscore.
bool isWordCharacter(char32_t cp) { return cp == U'_' || isAlphanumeric(cp); }

}  // namespace

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  std::size_t segment_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    auto [index, match_end] = longestAt(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<std::size_t>(index)];
    std::size_t start = pos;
    std::size_t stop = match_end;
    // The scan resumes after the match even when single_word rejects it, as the Rust
    // library's non-overlapping iterator does.
    pos = match_end;
    if (token.single_word) {
      bool space_before = start == 0 || !isWordCharacter(codePointBefore(text, start));
      std::size_t after = stop;
      bool space_after = stop == text.size() || !isWordCharacter(nextCodePoint(text, after));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) {
      std::size_t new_start = start;
      while (new_start > 0) {
        std::size_t previous = new_start - 1;
        while (previous > 0 && (static_cast<unsigned char>(text[previous]) & 0xC0) == 0x80) {
          --previous;
        }
        std::size_t probe = previous;
        if (!isWhiteSpace(nextCodePoint(text, probe))) break;
        new_start = previous;
      }
      start = std::max(new_start, segment_start);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        std::size_t probe = stop;
        if (!isWhiteSpace(nextCodePoint(text, probe))) break;
        stop = probe;
      }
      pos = stop;
    }
    if (segment_start < start) out.push_back(Segment{segment_start, start, -1});
    out.push_back(Segment{start, stop, token.id});
    segment_start = stop;
  }
  if (segment_start < text.size()) out.push_back(Segment{segment_start, text.size(), -1});
}

}  // namespace hfchain::tokenizer_detail
