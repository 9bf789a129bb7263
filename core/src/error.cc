// Names and rendering for the typed errors of error.h.
#include "hfchain/error.h"

#include <array>
#include <utility>

namespace hfchain {
namespace {

constexpr std::array<std::pair<ErrorClass, std::string_view>, 22> kErrorClassNames = {{
    {ErrorClass::kNone, "none"},
    {ErrorClass::kInvalidRequest, "invalid_request"},
    {ErrorClass::kUpstreamValidation, "upstream_validation"},
    {ErrorClass::kUpstreamAuth, "upstream_auth"},
    {ErrorClass::kUpstreamNotFound, "upstream_not_found"},
    {ErrorClass::kRateLimited, "rate_limited"},
    {ErrorClass::kModelLoading, "model_loading"},
    {ErrorClass::kUpstream5xx, "upstream_5xx"},
    {ErrorClass::kUpstreamGeneration, "upstream_generation"},
    {ErrorClass::kTimeout, "timeout"},
    {ErrorClass::kConnectFailed, "connect_failed"},
    {ErrorClass::kConnectionReset, "connection_reset"},
    {ErrorClass::kStreamIncomplete, "stream_incomplete"},
    {ErrorClass::kStreamParse, "stream_parse"},
    {ErrorClass::kEventTooLarge, "event_too_large"},
    {ErrorClass::kCircuitOpen, "circuit_open"},
    {ErrorClass::kBudgetExceeded, "budget_exceeded"},
    {ErrorClass::kContextOverflow, "context_overflow"},
    {ErrorClass::kCancelled, "cancelled"},
    {ErrorClass::kConfigRejected, "config_rejected"},
    {ErrorClass::kPluginRejected, "plugin_rejected"},
    {ErrorClass::kInternal, "internal"},
}};

}  // namespace

std::string_view errorClassName(ErrorClass cls) {
  for (const auto& [value, name] : kErrorClassNames) {
    if (value == cls) return name;
  }
  return "internal";
}

std::optional<ErrorClass> errorClassFromName(std::string_view name) {
  for (const auto& [value, known] : kErrorClassNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

std::string Error::describe() const {
  std::string out(errorClassName(cls));
  out += ": ";
  out += message;
  if (http_status != 0) {
    out += " (HTTP " + std::to_string(http_status) + ")";
  }
  return out;
}

Error makeError(ErrorClass cls, std::string message) {
  Error error;
  error.cls = cls;
  error.message = std::move(message);
  return error;
}

}  // namespace hfchain
