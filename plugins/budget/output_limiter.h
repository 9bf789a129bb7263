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
// - addTokenEvent: every event is one token, as TGI's /generate_stream sends them. An event
//   with empty text is a token too (the upstream holds back the bytes of a character that
//   spans tokens). An event whose text counts more tokens than that allows, such as the
//   single event of a non-streamed response, is charged by its text instead, and cut like a
//   piece of addText when it does not fit.
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

  // Accepts one token event with `text`. Returns how many leading bytes of it may be
  // delivered. When reached() is then true, the stream is cut after that prefix (before the
  // event when it is 0); otherwise the whole event was accepted.
  size_t addTokenEvent(std::string_view text);

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
  struct FittingPrefix {
    size_t length = 0;
    int64_t charge = 0;  // charge of that prefix; 0 for the empty prefix
  };
  // Finds the longest prefix of `piece`, shorter than it and ending on a code point start,
  // whose `charge` still fits under the limit. The whole piece is assumed not to fit.
  FittingPrefix longestFittingPrefix(std::string_view piece,
                                     const std::function<int64_t(std::string_view)>& charge);

  const int64_t limit_;
  TextCounter count_;
  std::string text_;
  int64_t exact_tokens_ = 0;  // exact count of text_[0, exact_bytes_)
  size_t exact_bytes_ = 0;
  // Empty token events since the last event with text. Their bytes arrive with the next
  // event, which may then count as up to that many tokens more without being charged again.
  int64_t held_back_events_ = 0;
  int64_t recounts_ = 0;
  bool reached_ = false;
};

}  // namespace hfchain::plugins::budget
