// Stream resumption: the request that asks another endpoint to continue a partial answer,
// and the trimming of text the continuation repeats.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fallback_config.h"
#include "hfchain/sdk/link.h"

namespace hfchain::plugins::fallback {

// Rewrites `request` (a copy of the original) to continue after `partial`, the text already
// delivered. A chat request gets an assistant message with the partial text and, when
// settings.chat_prompt is set, a user message asking to continue; a raw prompt gets the
// partial text appended to its inputs. max_new_tokens, when set, shrinks by the
// `tokens_delivered`.
void buildContinuation(sdk::Request& request, const std::string& partial, int64_t tokens_delivered,
                       const ResumeSettings& settings);

// Removes the start of a continuation that repeats text already delivered: either the whole
// delivered text (the continuation started over) or its last min_overlap_chars or more
// characters. Text is held back only while it could still be such a repeat.
class ContinuationTrimmer {
 public:
  ContinuationTrimmer(std::string delivered, size_t min_overlap_chars);

  // Takes the next text of the continuation; returns what the caller may see now.
  std::string feed(std::string_view text);
  // Returns the text still held back, at the end of the continuation.
  std::string finish();
  // Returns the number of characters trimmed so far.
  size_t trimmed() const { return trimmed_; }

 private:
  std::string decide(bool at_end);

  std::string delivered_;
  std::string pending_;
  std::vector<size_t> candidates_;  // starts in delivered_ that pending_ may still repeat from
  bool decided_ = false;
  size_t trimmed_ = 0;
};

}  // namespace hfchain::plugins::fallback
