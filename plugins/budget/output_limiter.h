// The output limit: decides how much of each piece of streamed text may still be delivered
// so that the delivered text never counts more tokens than the limit. Independent of the
// host, so that it is tested with any counting function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace hfchain::plugins::budget {

// Returns the number of tokens of plain text (no special tokens).
using TextCounter = std::function<int64_t(std::string_view text)>;

// Counts the output of one stream against a limit. Not thread-safe: one stream, one thread.
//
// Two ways to count, chosen per stream:
// - addTokenEvent: every event is one token, as TGI sends them. An event with empty text
//   is a token too (the upstream holds back the bytes of a character that spans tokens).
// - addText: the text is counted with a TextCounter. The exact count is made only when an
//   upper bound, the exact count at the last check plus the bytes added since, could
//   exceed the limit. A piece that does not fit whole is cut at the longest prefix, ending
//   on a code point start, that fits; the search over those prefixes is binary.
//
// NOTE: the upper bound assumes that appending n bytes adds at most n tokens, which holds
// for byte-level BPE (every byte is at most one token) and for per-character estimates.
class OutputLimiter {
 public:
  OutputLimiter(int64_t limit, TextCounter count);

  // Accepts one token event with `text`. Returns false, and accepts nothing, when the
  // limit is already reached, so the stream is cut before this event.
  bool addTokenEvent(std::string_view text);

  // Accepts a piece of text. Returns how many leading bytes of it may be delivered; fewer
  // than text.size() means the limit is reached and the stream is cut after that prefix.
  size_t addText(std::string_view text);

  // Whether the stream must end now with finish reason "length".
  bool reached() const { return reached_; }
  // The delivered text.
  const std::string& text() const { return text_; }
  // Tokens of the delivered text: exact for token events and after a cut; otherwise the
  // count made now, which may cost one full count of the text.
  int64_t tokens();
  int64_t limit() const { return limit_; }
  // Exact counts made so far, for tests and metrics.
  int64_t recounts() const { return recounts_; }

 private:
  int64_t countNow(std::string_view text);

  const int64_t limit_;
  TextCounter count_;
  std::string text_;
  int64_t exact_tokens_ = 0;  // exact count of text_[0, exact_bytes_)
  size_t exact_bytes_ = 0;
  int64_t recounts_ = 0;
  bool reached_ = false;
};

}  // namespace hfchain::plugins::budget
