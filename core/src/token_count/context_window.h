// Discovery of a target's context window for targets configured with `context_window: auto`.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "hfchain/result.h"
#include "hfchain/target.h"

namespace hfchain::internal {

// Reads the context window of a target once, on first use, and keeps it: TGI's GET
// {base}/info (max_total_tokens) for tgi targets, and for other protocols the model's
// config.json on the Hub (max_position_embeddings, or that of text_config), which honours
// HF_ENDPOINT and HF_TOKEN. A failed look-up is logged and retried after
// kRetryAfterFailureMs, and the window counts as unknown (0) meanwhile. Thread-safe.
class ContextWindowResolver {
 public:
  static constexpr int64_t kRetryAfterFailureMs = 60'000;

  explicit ContextWindowResolver(TargetConfig target);

  // Returns the window in tokens, or 0 when unknown. The first call makes the look-up, so it
  // may take up to the look-up timeout; `request_id` goes into the log lines.
  int64_t get(const std::string& request_id);

 private:
  Result<int64_t> lookUp() const;

  const TargetConfig target_;
  std::mutex mutex_;
  int64_t window_ = 0;            // guarded by mutex_
  int64_t last_failure_ms_ = -1;  // guarded by mutex_; steady clock
};

// Parses TGI's /info answer. Errors have class kStreamParse.
Result<int64_t> parseTgiInfoWindow(const std::string& body);
// Parses a model's config.json. Errors have class kStreamParse.
Result<int64_t> parseModelConfigWindow(const std::string& body);

}  // namespace hfchain::internal
