// Positions in UTF-8 text where it may be cut: code point, word and sentence starts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hfchain::plugins::budget {

// Returns whether byte `offset` of `text` starts a code point (or is the end of the text).
// Bytes of the form 10xxxxxx continue a code point; every other byte starts one.
bool isCodePointStart(std::string_view text, size_t offset);

// Returns the largest code point start at or before `offset`.
size_t codePointStartAtOrBefore(std::string_view text, size_t offset);

// Returns `text` when it has at most `max_bytes` bytes. Otherwise returns its longest prefix
// of at most `max_bytes` bytes that ends on a code point start, followed by "…" (3 bytes).
std::string shortenUtf8(std::string_view text, size_t max_bytes);

// Returns the byte offsets in (0, text.size()) where a code point starts, ascending.
std::vector<size_t> codePointStarts(std::string_view text);

// Returns the offsets in (0, text.size()) where a word starts: the first byte after a run of
// ASCII whitespace. Ascending.
std::vector<size_t> wordStarts(std::string_view text);

// Returns the offsets in (0, text.size()) where a sentence starts: the first non-space byte
// after '.', '!' or '?' followed by whitespace, or after a line break. Ascending.
std::vector<size_t> sentenceStarts(std::string_view text);

}  // namespace hfchain::plugins::budget
