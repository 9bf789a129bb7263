// Output limit arithmetic; see output_limiter.h for the counting contract.
#include "output_limiter.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "text_boundaries.h"

namespace hfchain::plugins::budget {

OutputLimiter::OutputLimiter(int64_t limit, TextCounter count)
    : limit_(limit), count_(std::move(count)) {}

size_t OutputLimiter::addTokenEvent(std::string_view text) {
  if (reached_) return 0;
  // n bytes are at most n tokens, so only a longer text can carry more tokens than this
  // event and the held-back ones before it. Those extra tokens are charged to this event.
  const int64_t covered = held_back_events_ + 1;
  int64_t charge = 1;
  if (static_cast<int64_t>(text.size()) > covered) {
    const int64_t counted = countNow(text);
    if (counted > covered) charge = counted - held_back_events_;
  }
  if (charge <= limit_ - exact_tokens_) {
    exact_tokens_ += charge;
    text_ += text;
    exact_bytes_ = text_.size();
    held_back_events_ = text.empty() ? held_back_events_ + 1 : 0;
    return text.size();
  }
  reached_ = true;
  if (charge == 1) return 0;

  // Several tokens in one event: deliver the longest prefix whose tokens still fit. A
  // non-empty prefix is at least the one token of this event.
  const int64_t held_back = held_back_events_;
  const FittingPrefix keep = longestFittingPrefix(text, [&](std::string_view prefix) -> int64_t {
    if (prefix.empty()) return 0;
    return std::max<int64_t>(1, countNow(prefix) - held_back);
  });
  exact_tokens_ += keep.charge;
  text_ += text.substr(0, keep.length);
  exact_bytes_ = text_.size();
  return keep.length;
}

OutputLimiter::FittingPrefix OutputLimiter::longestFittingPrefix(
    std::string_view piece, const std::function<int64_t(std::string_view)>& charge) {
  // Candidate lengths are 0 and the code point starts of the piece; length 0 always fits.
  std::vector<size_t> prefixes = codePointStarts(piece);
  auto lengthAt = [&](size_t index) { return index == 0 ? size_t{0} : prefixes[index - 1]; };
  size_t lo = 0;
  size_t hi = prefixes.size();
  int64_t kept_charge = 0;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    const int64_t tokens = charge(piece.substr(0, lengthAt(mid)));
    if (tokens <= limit_ - exact_tokens_) {
      lo = mid;
      kept_charge = tokens;
    } else {
      hi = mid - 1;
    }
  }
  return FittingPrefix{lengthAt(lo), kept_charge};
}

int64_t OutputLimiter::countNow(std::string_view text) {
  ++recounts_;
  return count_(text);
}

size_t OutputLimiter::addText(std::string_view text) {
  if (reached_) return 0;
  const size_t unchecked_bytes = text_.size() - exact_bytes_ + text.size();
  // Written as a difference so that a limit near INT64_MAX cannot overflow the sum.
  if (static_cast<int64_t>(unchecked_bytes) <= limit_ - exact_tokens_) {
    text_ += text;
    return text.size();
  }
  std::string candidate = text_;
  candidate += text;
  const int64_t whole = countNow(candidate);
  if (whole <= limit_) {
    text_ = std::move(candidate);
    exact_tokens_ = whole;
    exact_bytes_ = text_.size();
    return text.size();
  }

  // The whole piece is over the limit; the empty prefix is not, because text_ was checked.
  // The charge of a prefix is the count of all text with it, minus what is already counted.
  const int64_t before = exact_tokens_;
  const FittingPrefix keep = longestFittingPrefix(text, [&](std::string_view prefix) -> int64_t {
    return countNow(text_ + std::string(prefix)) - before;
  });
  text_ += text.substr(0, keep.length);
  // The search counted the kept prefix unless it kept nothing, in which case the count of
  // text_ made above still holds.
  exact_tokens_ = keep.length > 0 ? before + keep.charge : countNow(text_);
  exact_bytes_ = text_.size();
  reached_ = true;
  return keep.length;
}

int64_t OutputLimiter::tokens() {
  if (exact_bytes_ != text_.size()) {
    exact_tokens_ = countNow(text_);
    exact_bytes_ = text_.size();
  }
  return exact_tokens_;
}

}  // namespace hfchain::plugins::budget
