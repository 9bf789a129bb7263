// GET {endpoint}/api/models/{id} with redirects, timeouts and typed errors.
#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>

#include "hfchain/decoders.h"
#include "hfchain/hub.h"
#include "hfchain/log.h"
#include "transport/connection_pool.h"
#include "transport/redactor.h"
#include "transport/small_exchange.h"

namespace hfchain::hub {
namespace {

using transport::Endpoint;

// Model information with a long file list stays far below this; a larger body is rejected.
constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Model ids are "name" or "owner/name" made of letters, digits, '-', '_' and '.'.
bool validModelId(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  if (id.find("..") != std::string_view::npos) return false;
  if (std::count(id.begin(), id.end(), '/') > 1) return false;
  if (id.front() == '/' || id.back() == '/') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

bool isRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

Error withModel(Error error, std::string_view model_id, const std::string& endpoint,
                const transport::Redactor& redactor) {
  std::string prefix = "model " + inQuotes(model_id) + " on " + endpoint + ": ";
  if (error.cls == ErrorClass::kUpstreamNotFound) {
    prefix = "model " + inQuotes(model_id) + " not found on " + endpoint + ": ";
  } else if (error.cls == ErrorClass::kUpstreamAuth) {
    // The Hub returns 401 both for gated or private models and for ids that do not exist.
    error.message +=
        " (the model may be gated or private, or may not exist; set HF_TOKEN to "
        "a token that has access)";
  }
  error.message = prefix + error.message;
  redactor.apply(error);
  return error;
}

}  // namespace

Result<ModelInfo> fetchModelInfo(std::string_view model_id, const HubOptions& options) {
  if (!validModelId(model_id)) {
    return makeError(ErrorClass::kInvalidRequest,
                     "model id " + inQuotes(model_id) +
                         " is invalid; use \"name\" or \"owner/name\" with letters, digits, "
                         "'-', '_' and '.'");
  }
  std::string endpoint_url = options.endpoint;
  if (endpoint_url.empty()) endpoint_url = environment("HF_ENDPOINT");
  if (endpoint_url.empty()) endpoint_url = std::string(kDefaultEndpoint);
  Secret token = options.token;
  if (token.empty()) token = {environment("HF_TOKEN"), "environment variable HF_TOKEN"};

  auto first = transport::parseEndpoint(endpoint_url, "Hub endpoint");
  if (!first) return first.error();
  Endpoint endpoint = *first;
  const std::string token_origin = endpoint.origin();
  transport::Redactor redactor;
  redactor.addSecret(token.value);

  Poco::URI current(endpoint.origin() + endpoint.base_path + "/api/models/" +
                    std::string(model_id));
  Poco::Logger& logger = log::get("hfchain.hub");
  for (int redirects = 0;; ++redirects) {
    Poco::Net::Context::Ptr tls_context;
    if (endpoint.tls) {
      auto context =
          transport::makeClientTlsContext(options.tls_verify, options.ca_file, "Hub endpoint");
      if (!context) return context.error();
      tls_context = *context;
    }
    const std::string authorization = !token.empty() && endpoint.origin() == token_origin
                                          ? "Bearer " + token.value
                                          : std::string();
    const std::string path = current.getPathEtc();
    HFC_LOG_DEBUG(logger, "GET " + endpoint.origin() + path);
    transport::SmallRequest request;
    request.path = path;
    request.authorization = authorization;
    request.timeout_ms = options.timeout_ms;
    request.max_body_bytes = kMaxBodyBytes;
    auto result = transport::exchangeSmall(endpoint, tls_context, request);
    if (!result) return withModel(result.error(), model_id, endpoint_url, redactor);

    if (isRedirect(result->status) && !result->location.empty()) {
      if (redirects >= options.max_redirects) {
        return makeError(ErrorClass::kUpstreamNotFound,
                         "model " + inQuotes(model_id) + " on " + endpoint_url + ": more than " +
                             std::to_string(options.max_redirects) + " redirects");
      }
      try {
        current.resolve(result->location);
      } catch (const Poco::Exception& e) {
        return makeError(ErrorClass::kUpstreamNotFound,
                         "model " + inQuotes(model_id) + ": invalid redirect location " +
                             inQuotes(result->location) + ": " + e.displayText());
      }
      auto next = transport::parseEndpoint(current.getScheme() + "://" + current.getAuthority(),
                                           "Hub redirect location");
      if (!next) return next.error();
      endpoint = *next;
      HFC_LOG_DEBUG(logger, "model " + inQuotes(model_id) + " redirected to " + current.toString());
      continue;
    }
    if (result->status >= 300) {
      Error error = parseUpstreamError(result->status, result->content_type, result->body,
                                       result->retry_after);
      error.http_status = result->status;
      return withModel(std::move(error), model_id, endpoint_url, redactor);
    }

    auto info = parseModelInfo(result->body);
    if (!info) return withModel(info.error(), model_id, endpoint_url, redactor);
    info->requested_id = std::string(model_id);
    return info;
  }
}

}  // namespace hfchain::hub
