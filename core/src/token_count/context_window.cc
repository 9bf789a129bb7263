// Context windows read from TGI's /info or from the model's config.json on the Hub.
#include "token_count/context_window.h"

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "hfchain/hub.h"
#include "hfchain/log.h"
#include "transport/connection_pool.h"
#include "transport/small_exchange.h"

namespace hfchain::internal {
namespace {

constexpr int64_t kLookUpTimeoutMs = 5'000;

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// The log prefix of a request id; look-ups outside a request have none.
std::string requestPrefix(const std::string& request_id) {
  return request_id.empty() ? std::string() : HFC_RID(request_id);
}

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

Result<transport::SmallResponse> getJson(const std::string& base_url, const std::string& path,
                                         const Secret& token, bool tls_verify,
                                         const std::string& ca_file) {
  auto endpoint = transport::parseEndpoint(base_url, "context window look-up");
  if (!endpoint) return endpoint.error();
  Poco::Net::Context::Ptr tls;
  if (endpoint->tls) {
    auto context = transport::makeClientTlsContext(tls_verify, ca_file, "context window look-up");
    if (!context) return context.error();
    tls = *context;
  }
  transport::SmallRequest request;
  request.path = endpoint->base_path + path;
  if (!token.empty()) request.authorization = "Bearer " + token.value;
  request.timeout_ms = kLookUpTimeoutMs;
  request.max_body_bytes = 4 * 1024 * 1024;
  auto response = transport::exchangeSmall(*endpoint, tls, request);
  if (!response) return response.error();
  if (response->status != 200) {
    return makeError(
        ErrorClass::kUpstreamNotFound,
        endpoint->origin() + request.path + " returned HTTP " + std::to_string(response->status));
  }
  return response;
}

Result<int64_t> positiveField(const nlohmann::json& object, const char* field) {
  if (object.is_object() && object.contains(field) && object[field].is_number_integer() &&
      object[field].get<int64_t>() > 0) {
    return object[field].get<int64_t>();
  }
  return makeError(ErrorClass::kStreamParse, std::string("no positive integer ") + field);
}

}  // namespace

Result<int64_t> parseTgiInfoWindow(const std::string& body) {
  auto info = nlohmann::json::parse(body, nullptr, false);
  // max_total_tokens bounds input plus new tokens; TGI before 2.1 called it the same.
  auto window = positiveField(info, "max_total_tokens");
  if (!window) {
    return makeError(ErrorClass::kStreamParse,
                     "the /info answer has no positive integer max_total_tokens");
  }
  return window;
}

Result<int64_t> parseModelConfigWindow(const std::string& body) {
  auto config = nlohmann::json::parse(body, nullptr, false);
  if (auto window = positiveField(config, "max_position_embeddings")) return window;
  // Multimodal models such as Gemma 3 keep the language model's settings in text_config.
  if (config.is_object() && config.contains("text_config")) {
    if (auto window = positiveField(config["text_config"], "max_position_embeddings")) {
      return window;
    }
  }
  return makeError(ErrorClass::kStreamParse,
                   "config.json has no positive integer max_position_embeddings");
}

ContextWindowResolver::ContextWindowResolver(TargetConfig target) : target_(std::move(target)) {}

Result<int64_t> ContextWindowResolver::lookUp() const {
  if (target_.protocol == Protocol::kTgi) {
    auto response =
        getJson(target_.base_url, "/info", target_.token, target_.tls_verify, target_.ca_file);
    if (!response) return response.error();
    return parseTgiInfoWindow(response->body);
  }
  if (target_.model.empty()) {
    return makeError(ErrorClass::kConfigRejected,
                     "the target has no model whose config.json could give the window; set "
                     "context_window to a number");
  }
  std::string hub = environment("HF_ENDPOINT");
  if (hub.empty()) hub = std::string(hub::kDefaultEndpoint);
  Secret token{environment("HF_TOKEN"), "environment variable HF_TOKEN"};
  auto response = getJson(hub, "/" + target_.model + "/resolve/main/config.json", token, true, "");
  if (!response) return response.error();
  return parseModelConfigWindow(response->body);
}

int64_t ContextWindowResolver::get(const std::string& request_id) {
  if (!target_.context_window_auto) return target_.context_window;
  std::lock_guard lock(mutex_);
  if (window_ > 0) return window_;
  const int64_t now = steadyMs();
  if (last_failure_ms_ >= 0 && now - last_failure_ms_ < kRetryAfterFailureMs) return 0;
  Result<int64_t> window = lookUp();
  Poco::Logger& logger = log::get("hfchain.tokens");
  if (!window) {
    last_failure_ms_ = now;
    HFC_LOG_WARNING(logger, requestPrefix(request_id) + "the context window of target " +
                                inQuotes(target_.name) + " is unknown: " + window.error().message +
                                "; retrying in " + std::to_string(kRetryAfterFailureMs / 1000) +
                                " s");
    return 0;
  }
  window_ = *window;
  HFC_LOG_INFO(logger, requestPrefix(request_id) + "target " + inQuotes(target_.name) +
                           " has a context window of " + std::to_string(window_) + " tokens");
  return window_;
}

}  // namespace hfchain::internal
