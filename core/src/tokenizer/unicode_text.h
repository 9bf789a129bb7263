// UTF-8 and Unicode helpers for the tokenizer: decoding, replacement of invalid bytes, the
// Unicode properties the Rust library checks, NFC and the GPT-2 byte-to-character map.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hfchain::tokenizer_detail {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Appends the UTF-8 encoding of a code point.
void appendUtf8(std::string& out, char32_t cp);

// Decodes the code point at text[pos] of valid UTF-8 and advances pos past it.
char32_t nextCodePoint(std::string_view text, std::size_t& pos);

// Returns the byte length of the UTF-8 sequence that starts with this lead byte (1 for a
// continuation byte, so loops over valid text always advance).
inline std::size_t utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

// Returns the length of the longest valid UTF-8 prefix of text.
std::size_t validUtf8Prefix(std::string_view text);

// Returns text with each maximal invalid subsequence replaced by U+FFFD, following the WHATWG
// Encoding Standard (the same output as TextDecoder and Rust's String::from_utf8_lossy).
std::string replaceInvalidUtf8(std::string_view text);

// Rust's char::is_whitespace: the Unicode White_Space property.
bool isWhiteSpace(char32_t cp);

// Rust's char::is_alphanumeric: Alphabetic or a numeric general category (Nd, Nl, No).
bool isAlphanumeric(char32_t cp);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };

// Normalizes valid UTF-8 text in place with ICU. Returns false if ICU failed.
bool normalizeUnicode(NormalForm form, std::string& text);

// The GPT-2 byte-level alphabet: each byte maps to a printable code point.
struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_utf8;      // UTF-8 of the code point for each byte
  std::array<int16_t, 0x180> code_point_to_byte;  // -1 for code points outside the alphabet
};

const ByteLevelAlphabet& byteLevelAlphabet();

}  // namespace hfchain::tokenizer_detail
