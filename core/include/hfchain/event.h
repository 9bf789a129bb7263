// Stream events: what a response delivers to its reader, one at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hfchain/error.h"

namespace hfchain {

struct Usage {
  int64_t prompt_tokens = -1;  // -1 when the upstream did not report it
  int64_t completion_tokens = -1;
  int64_t total_tokens = -1;
  bool present() const { return prompt_tokens >= 0 || completion_tokens >= 0; }
};

enum class EventKind : uint32_t {
  kToken = 1,   // a piece of generated text
  kFinish = 2,  // the end of a successful answer: finish reason, usage, full text
  kError = 3,   // the answer failed; no event follows
};

// One stream event. A successful stream is zero or more kToken events followed by exactly
// one kFinish; a failed one ends with kError, possibly after some kToken events.
struct Event {
  EventKind kind = EventKind::kToken;
  std::string text;       // kToken: the token's text (may be empty, see below)
  int64_t token_id = -1;  // kToken: -1 when unknown (OpenAI-style streams)
  std::optional<double> logprob;
  bool special = false;        // kToken: a special token such as </s>
  std::string finish_reason;   // kFinish: "length", "stop", "eos_token", ...
  Usage usage;                 // kFinish: usage as reported by the upstream
  std::string generated_text;  // kFinish: the whole text, when the upstream sent it
  Error error;                 // kError: what failed
  std::string served_by;       // target that produced the event, set by the transport

  // An empty kToken text is legal: servers hold back the first bytes of a multi-byte
  // character and send it whole with the next token.
  void clear() { *this = Event{}; }
};

}  // namespace hfchain
