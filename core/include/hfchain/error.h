// Typed errors that travel through the chain, so that links such as retry, breaker and
// fallback can branch on the kind of failure instead of on message text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hfchain {

// Error classes. The numeric values are part of the plugin ABI (HFC_ERROR_* in
// hfchain/abi/hfchain_plugin.h) and never change; new classes get new numbers.
enum class ErrorClass : uint32_t {
  kNone = 0,
  kInvalidRequest = 1,      // the caller's request is malformed or incomplete
  kUpstreamValidation = 2,  // upstream 4xx other than those below (422, 400, ...)
  kUpstreamAuth = 3,        // upstream 401 or 403
  kUpstreamNotFound = 4,    // upstream 404: unknown model or route
  kRateLimited = 5,         // upstream 429 or a local limit
  kModelLoading = 6,        // upstream 503 with estimated_time
  kUpstream5xx = 7,         // upstream 5xx
  kUpstreamGeneration = 8,  // error event inside a 200 stream
  kTimeout = 9,             // a connect, first-byte, idle or total deadline passed
  kConnectFailed = 10,      // no connection could be made
  kConnectionReset = 11,    // the connection broke during the exchange
  kStreamIncomplete = 12,   // the stream ended without its final event
  kStreamParse = 13,        // an event could not be decoded
  kEventTooLarge = 14,      // an event exceeded the configured maximum size
  kCircuitOpen = 15,        // a circuit breaker rejected the call
  kBudgetExceeded = 16,     // a token or cost budget rejected the call
  kContextOverflow = 17,    // the prompt does not fit the model's context window
  kCancelled = 18,          // the caller stopped the request
  kConfigRejected = 19,     // a configuration was invalid
  kPluginRejected = 20,     // a plugin could not be loaded or refused its settings
  kInternal = 21,           // a bug or an unexpected exception
};

// Returns the stable snake_case name of an error class, as used in logs, JSON output
// and the gateway's error bodies.
std::string_view errorClassName(ErrorClass cls);

// Returns the error class for a name from errorClassName, or nullopt.
std::optional<ErrorClass> errorClassFromName(std::string_view name);

struct Error {
  ErrorClass cls = ErrorClass::kNone;
  std::string message;           // human-readable, never contains a secret
  int http_status = 0;           // upstream HTTP status, 0 when there was no HTTP answer
  std::string error_type;        // upstream `error_type` field, if any
  int64_t retry_after_ms = -1;   // from Retry-After, -1 when absent
  double estimated_time_s = -1;  // from a 503 "model is loading", -1 when absent
  std::string target;            // the target that produced the error, if known

  bool ok() const { return cls == ErrorClass::kNone; }

  // Renders "class: message (HTTP status)" for logs and the CLI.
  std::string describe() const;
};

Error makeError(ErrorClass cls, std::string message);

}  // namespace hfchain
