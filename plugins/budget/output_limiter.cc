// Output limit arithmetic; see output_limiter.h for the counting contract.
#include "output_limiter.h"

#include <utility>
#include <vector>

#include "text_boundaries.h"

namespace hfchain::plugins::budget {

OutputLimiter::OutputLimiter(int64_t limit, TextCounter count)
    : limit_(limit), count_(std::move(count)) {}

bool OutputLimiter::addTokenEvent(std::string_view text) {
  if (exact_tokens_ >= limit_) {
    reached_ = true;
    return false;
  }
  ++exact_tokens_;
  text_ += text;
  exact_bytes_ = text_.size();
  return true;
}

int64_t OutputLimiter::countNow(std::string_view text) {
  ++recounts_;
  return count_(text);
}

size_t OutputLimiter::addText(std::string_view text) {
  if (reached_) return 0;
  const size_t unchecked_bytes = text_.size() - exact_bytes_ + text.size();
  if (exact_tokens_ + static_cast<int64_t>(unchecked_bytes) <= limit_) {
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
  // Search the code point starts of the piece for the longest prefix that fits.
  std::vector<size_t> prefixes = codePointStarts(text);
  size_t lo = 0;  // index into {0, prefixes...}; prefix lengths below lo fit
  size_t hi = prefixes.size();
  int64_t kept_tokens = -1;
  auto lengthAt = [&](size_t index) { return index == 0 ? size_t{0} : prefixes[index - 1]; };
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    const int64_t tokens = countNow(text_ + std::string(text.substr(0, lengthAt(mid))));
    if (tokens <= limit_) {
      lo = mid;
      kept_tokens = tokens;
    } else {
      hi = mid - 1;
    }
  }
  const size_t keep = lengthAt(lo);
  text_ += text.substr(0, keep);
  exact_tokens_ = kept_tokens >= 0 ? kept_tokens : countNow(text_);
  exact_bytes_ = text_.size();
  reached_ = true;
  return keep;
}

int64_t OutputLimiter::tokens() {
  if (exact_bytes_ != text_.size()) {
    exact_tokens_ = countNow(text_);
    exact_bytes_ = text_.size();
  }
  return exact_tokens_;
}

}  // namespace hfchain::plugins::budget
