// Cut positions in UTF-8 text. Only ASCII bytes are tested for spaces and punctuation, and
// those never occur inside a multi-byte UTF-8 sequence, so every position returned is also a
// code point start.
#include "text_boundaries.h"

namespace hfchain::plugins::budget {
namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

}  // namespace

bool isCodePointStart(std::string_view text, size_t offset) {
  if (offset >= text.size()) return offset == text.size();
  return (static_cast<unsigned char>(text[offset]) & 0xC0) != 0x80;
}

size_t codePointStartAtOrBefore(std::string_view text, size_t offset) {
  if (offset >= text.size()) return text.size();
  while (offset > 0 && !isCodePointStart(text, offset)) --offset;
  return offset;
}

std::string shortenUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::string out(text.substr(0, codePointStartAtOrBefore(text, max_bytes)));
  out += "\xE2\x80\xA6";  // U+2026 HORIZONTAL ELLIPSIS
  return out;
}

std::vector<size_t> codePointStarts(std::string_view text) {
  std::vector<size_t> starts;
  for (size_t i = 1; i < text.size(); ++i) {
    if (isCodePointStart(text, i)) starts.push_back(i);
  }
  return starts;
}

std::vector<size_t> wordStarts(std::string_view text) {
  std::vector<size_t> starts;
  for (size_t i = 1; i < text.size(); ++i) {
    if (isSpace(text[i - 1]) && !isSpace(text[i])) starts.push_back(i);
  }
  return starts;
}

std::vector<size_t> sentenceStarts(std::string_view text) {
  std::vector<size_t> starts;
  bool after_end = false;  // a sentence end or a line break was seen, then only spaces
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      after_end = true;
    } else if (isSpace(c)) {
      if (i > 0 && (text[i - 1] == '.' || text[i - 1] == '!' || text[i - 1] == '?')) {
        after_end = true;
      }
    } else {
      if (after_end && i > 0) starts.push_back(i);
      after_end = false;
    }
  }
  return starts;
}

}  // namespace hfchain::plugins::budget
