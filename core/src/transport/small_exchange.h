// One small non-streaming HTTP exchange with a JSON response, for side calls such as the Hub's
// model information, TGI's /info and /tokenize. Not pooled: each call opens its own
// connection, because these calls are rare next to generation requests.
#pragma once

#include <Poco/Net/Context.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "hfchain/result.h"
#include "transport/connection_pool.h"

namespace hfchain::transport {

struct SmallResponse {
  int status = 0;
  std::string content_type;
  std::string location;
  std::string retry_after;
  std::string body;
};

struct SmallRequest {
  std::string method = "GET";
  std::string path;           // origin-form: path and query
  std::string authorization;  // the Authorization header value; empty: none
  std::string body;           // sent as application/json when not empty
  int64_t timeout_ms = 10'000;
  size_t max_body_bytes = 16 * 1024 * 1024;
};

// Sends `request` and reads the whole response, whatever its status. Network failures come
// back as kConnectFailed, kTimeout or kConnectionReset errors, and a body over
// max_body_bytes as kEventTooLarge; messages name the URL but never the authorization.
Result<SmallResponse> exchangeSmall(const Endpoint& endpoint,
                                    const Poco::Net::Context::Ptr& tls_context,
                                    const SmallRequest& request);

}  // namespace hfchain::transport
