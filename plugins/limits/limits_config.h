// Settings of the limits link, parsed and validated from the link's JSON settings.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace hfchain::plugins::limits {

struct LimitsConfig {
  // Request rate: a bucket of `burst` requests refilled at requests_per_second. 0: off.
  double requests_per_second = 0;
  double burst = 0;  // defaults to max(1, requests_per_second)
  // Token rate: a bucket of token_burst tokens refilled at tokens_per_minute. 0: off.
  double tokens_per_minute = 0;
  double token_burst = 0;  // defaults to tokens_per_minute
  // The token estimate of a request without max_new_tokens.
  int64_t default_max_new_tokens = 256;
  // How long a request may wait for a bucket to refill before it is rejected instead.
  int64_t max_wait_ms = 0;
  // Concurrency: at most max_concurrent calls at once; up to max_queue more wait up to
  // queue_timeout_ms for a slot. 0 turns the limit off.
  int64_t max_concurrent = 0;
  int64_t max_queue = 0;
  int64_t queue_timeout_ms = 1'000;
  // Which requests share buckets and slots: neither flag set is one set for all requests.
  bool per_target = false;
  bool per_key = false;
};

// Parses the settings; returns null and sets `error` to a message naming the key, the value
// and what is expected.
std::unique_ptr<LimitsConfig> parseLimitsConfig(const nlohmann::json& settings, std::string& error);

}  // namespace hfchain::plugins::limits
