// Continuation requests and repeated-prefix trimming.
#include "resumption.h"

#include <algorithm>

namespace hfchain::plugins::fallback {

void buildContinuation(sdk::Request& request, const std::string& partial, int64_t tokens_delivered,
                       const ResumeSettings& settings) {
  const size_t count = request.messageCount();
  if (count > 0) {
    request.insertMessage(count, "assistant", partial);
    if (!settings.chat_prompt.empty())
      request.insertMessage(count + 1, "user", settings.chat_prompt);
  } else {
    request.setInputs(std::string(request.inputs()) + partial);
  }
  std::optional<nlohmann::json> max_new_tokens = request.param("max_new_tokens");
  if (max_new_tokens && max_new_tokens->is_number_integer()) {
    const int64_t left = std::max<int64_t>(1, max_new_tokens->get<int64_t>() - tokens_delivered);
    request.setParam("max_new_tokens", left);
  }
}

ContinuationTrimmer::ContinuationTrimmer(std::string delivered, size_t min_overlap_chars)
    : delivered_(std::move(delivered)) {
  if (delivered_.empty()) {
    decided_ = true;
    return;
  }
  // A start s repeats delivered_[s:]; s == 0 is a full restart and counts at any length.
  candidates_.push_back(0);
  const size_t size = delivered_.size();
  for (size_t start = 1; start < size && size - start >= min_overlap_chars; ++start) {
    candidates_.push_back(start);
  }
}

std::string ContinuationTrimmer::feed(std::string_view text) {
  if (decided_) return std::string(text);
  const size_t before = pending_.size();
  pending_ += text;
  // Keep the starts whose delivered text agrees with every pending character so far.
  std::erase_if(candidates_, [&](size_t start) {
    for (size_t i = before; i < pending_.size() && start + i < delivered_.size(); ++i) {
      if (pending_[i] != delivered_[start + i]) return true;
    }
    return false;
  });
  return decide(false);
}

std::string ContinuationTrimmer::finish() {
  if (decided_) return "";
  return decide(true);
}

std::string ContinuationTrimmer::decide(bool at_end) {
  bool growing = false;
  size_t best = delivered_.size();  // the start of the longest complete repeat
  for (size_t start : candidates_) {
    if (start + pending_.size() < delivered_.size()) {
      growing = true;
    } else {
      best = std::min(best, start);
    }
  }
  if (growing && !at_end) return "";
  decided_ = true;
  std::string out;
  if (best < delivered_.size()) {
    trimmed_ = delivered_.size() - best;
    out = pending_.substr(trimmed_);
  } else if (at_end && std::find(candidates_.begin(), candidates_.end(), 0) != candidates_.end()) {
    // The continuation started over and stopped before it got past the delivered text.
    trimmed_ = pending_.size();
  } else {
    out = pending_;
  }
  pending_.clear();
  candidates_.clear();
  return out;
}

}  // namespace hfchain::plugins::fallback
