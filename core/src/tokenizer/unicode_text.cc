// UTF-8 helpers, Unicode properties through ICU, and the GPT-2 byte-level alphabet.
#include "tokenizer/unicode_text.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>

namespace hfchain::tokenizer_detail {

void appendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t nextCodePoint(std::string_view text, std::size_t& pos) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  std::size_t length = utf8Length(lead);
  if (pos + length > text.size()) length = 1;
  char32_t cp = 0;
  switch (length) {
    case 1:
      cp = lead;
      break;
    case 2:
      cp = ((lead & 0x1Fu) << 6) | (byte(pos + 1) & 0x3Fu);
      break;
    case 3:
      cp = ((lead & 0x0Fu) << 12) | ((byte(pos + 1) & 0x3Fu) << 6) | (byte(pos + 2) & 0x3Fu);
      break;
    default:
      cp = ((lead & 0x07u) << 18) | ((byte(pos + 1) & 0x3Fu) << 12) |
           ((byte(pos + 2) & 0x3Fu) << 6) | (byte(pos + 3) & 0x3Fu);
      break;
  }
  pos += length;
  return cp;
}

namespace {

// Returns the number of continuation bytes a lead byte requires and the allowed range of the
// first continuation byte, per the WHATWG UTF-8 decoder. Returns -1 for a byte that cannot
// start a sequence.
int sequenceShape(unsigned char lead, unsigned char& lower, unsigned char& upper) {
  lower = 0x80;
  upper = 0xBF;
  if (lead < 0x80) return 0;
  if (lead >= 0xC2 && lead <= 0xDF) return 1;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (lead == 0xE0) lower = 0xA0;
    if (lead == 0xED) upper = 0x9F;
    return 2;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (lead == 0xF0) lower = 0x90;
    if (lead == 0xF4) upper = 0x8F;
    return 3;
  }
  return -1;
}

// Returns how many bytes at text[pos] form a valid sequence, or the number of bytes of the
// maximal invalid subsequence negated (at least one byte).
long scanSequence(std::string_view text, std::size_t pos) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lower = 0;
  unsigned char upper = 0;
  int needed = sequenceShape(byte(pos), lower, upper);
  if (needed == 0) return 1;
  if (needed < 0) return -1;
  std::size_t i = pos + 1;
  for (int k = 0; k < needed; ++k, ++i) {
    if (i >= text.size() || byte(i) < lower || byte(i) > upper) {
      return -static_cast<long>(i - pos);
    }
    lower = 0x80;
    upper = 0xBF;
  }
  return static_cast<long>(needed + 1);
}

}  // namespace

std::size_t validUtf8Prefix(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // ASCII runs are the common case, so skip them eight bytes at a time.
    while (pos + 8 <= text.size()) {
      uint64_t word = 0;
      for (int k = 0; k < 8; ++k) {
        word |= static_cast<uint64_t>(static_cast<unsigned char>(text[pos + k])) << (8 * k);
      }
      if (word & 0x8080808080808080ull) break;
      pos += 8;
    }
    if (pos >= text.size()) break;
    long length = scanSequence(text, pos);
    if (length < 0) return pos;
    pos += static_cast<std::size_t>(length);
  }
  return text.size();
}

std::string replaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t pos = 0;
  while (pos < text.size()) {
    long length = scanSequence(text, pos);
    if (length > 0) {
      out.append(text.substr(pos, static_cast<std::size_t>(length)));
      pos += static_cast<std::size_t>(length);
    } else {
      appendUtf8(out, kReplacementChar);
      pos += static_cast<std::size_t>(-length);
    }
  }
  return out;
}

bool isWhiteSpace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE);
}

bool isAlphanumeric(char32_t cp) {
  auto c = static_cast<UChar32>(cp);
  if (u_hasBinaryProperty(c, UCHAR_ALPHABETIC)) return true;
  int8_t category = u_charType(c);
  return category == U_DECIMAL_DIGIT_NUMBER || category == U_LETTER_NUMBER ||
         category == U_OTHER_NUMBER;
}

bool normalizeUnicode(NormalForm form, std::string& text) {
  // Code points below U+0300 are unchanged by every normal form used here unless a combining
  // mark follows, and all of those are at U+0300 or above (lead byte 0xCC or higher).
  bool needs_work = false;
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0xCC) {
      needs_work = true;
      break;
    }
  }
  bool compatibility = form == NormalForm::kNfkc || form == NormalForm::kNfkd;
  if (!needs_work && !compatibility) return true;

  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  switch (form) {
    case NormalForm::kNfc:
      normalizer = icu::Normalizer2::getNFCInstance(status);
      break;
    case NormalForm::kNfd:
      normalizer = icu::Normalizer2::getNFDInstance(status);
      break;
    case NormalForm::kNfkc:
      normalizer = icu::Normalizer2::getNFKCInstance(status);
      break;
    case NormalForm::kNfkd:
      normalizer = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || normalizer == nullptr) return false;
  std::string out;
  out.reserve(text.size());
  icu::StringByteSink<std::string> sink(&out);
  normalizer->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())),
                            sink, nullptr, status);
  if (U_FAILURE(status)) return false;
  text = std::move(out);
  return true;
}

namespace {

ByteLevelAlphabet buildByteLevelAlphabet() {
  // Printable bytes keep their own code point. The others get U+0100 and up, in byte order.
  // GPT-2 introduced this table, and byte-level BPE vocabularies are written in it.
  ByteLevelAlphabet alphabet;
  alphabet.code_point_to_byte.fill(-1);
  char32_t next_extra = 0x100;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    char32_t cp = printable ? static_cast<char32_t>(b) : next_extra++;
    appendUtf8(alphabet.byte_to_utf8[b], cp);
    alphabet.code_point_to_byte[cp] = static_cast<int16_t>(b);
  }
  return alphabet;
}

}  // namespace

const ByteLevelAlphabet& byteLevelAlphabet() {
  static const ByteLevelAlphabet alphabet = buildByteLevelAlphabet();
  return alphabet;
}

}  // namespace hfchain::tokenizer_detail
