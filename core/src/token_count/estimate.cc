// The token estimate used where no tokenizer is configured: a weight per character class,
// summed and rounded up.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "hfchain/token_counter.h"

namespace hfchain {
namespace {

// Decodes the code point at `text[i]` and advances `i`. An invalid byte counts as one code
// point of its own, as the tokenizer's U+FFFD replacement does.
char32_t nextCodePoint(std::string_view text, size_t& i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t length = lead < 0x80           ? 1
                  : (lead >> 5) == 0x6  ? 2
                  : (lead >> 4) == 0xE  ? 3
                  : (lead >> 3) == 0x1E ? 4
                                        : 0;
  if (length == 0 || i + length > text.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t code = length == 1 ? lead : lead & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    const auto byte = static_cast<unsigned char>(text[i + k]);
    if ((byte & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    code = (code << 6) | (byte & 0x3F);
  }
  i += length;
  return code;
}

// Tokens per character, by class. The unit test EstimateTokens.CorpusCloseToTokenizers checks
// the sum against the Llama 3, Qwen 3 and Gemma 3 tokenizers on mixed prose, code and Chinese.
double weightOf(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 0.25;
    if (c >= '0' && c <= '9') return 1.0 / 3;
    if (c == ' ') return 0.05;  // a space usually joins the word after it
    if (c == '\n' || c == '\r' || c == '\t') return 0.5;
    return 0.7;  // punctuation, often merged with a neighbour
  }
  if (c <= 0x024F) return 0.5;  // accented Latin letters
  if (c <= 0x1FFF) return 0.4;  // Greek, Cyrillic, Hebrew, Arabic, Indic ...
  if (c == 0x200D || (c >= 0xFE00 && c <= 0xFE0F)) return 1.0;  // joiners, variation selectors
  if (c <= 0x2BFF) return 1.5;                                  // punctuation, arrows, symbols
  if (c >= 0x3000 && c <= 0x9FFF) return 1.0;                   // CJK, kana
  if (c >= 0xAC00 && c <= 0xD7AF) return 1.0;                   // Hangul syllables
  if (c >= 0xF900 && c <= 0xFAFF) return 1.0;                   // CJK compatibility ideographs
  if (c >= 0x1F000 && c <= 0x1FAFF) return 2.5;  // emoji: several byte-level tokens each
  if (c >= 0x20000) return 1.5;                  // rare CJK extensions
  return 1.0;
}

// The weights of the ASCII characters, looked up directly because most prompt bytes are ASCII.
const std::array<double, 128> kAsciiWeights = [] {
  std::array<double, 128> weights{};
  for (char32_t c = 0; c < 128; ++c) weights[c] = weightOf(c);
  return weights;
}();

}  // namespace

int64_t estimateTextTokens(std::string_view text) {
  if (text.empty()) return 0;
  double total = 0;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      total += kAsciiWeights[byte];
      ++i;
    } else {
      total += weightOf(nextCodePoint(text, i));
    }
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(total)));
}

int64_t estimateRequestTokens(const Request& request) {
  if (!request.isChat()) return estimateTextTokens(request.inputs) + 1;
  int64_t total = 3;
  for (const Message& message : request.messages) total += 4 + estimateTextTokens(message.content);
  return total;
}

}  // namespace hfchain
