// Turns a Request into the HTTP request of a target's protocol: path, JSON body and headers.
#pragma once

#include <string>
#include <vector>

#include "hfchain/decoders.h"
#include "hfchain/request.h"
#include "hfchain/result.h"
#include "hfchain/target.h"
#include "transport/connection_pool.h"

namespace hfchain::transport {

struct HttpCall {
  std::string path;    // origin-form request target, including the base URL's prefix
  std::string body;    // JSON
  bool stream = true;  // an event stream was requested
  StreamFormat format = StreamFormat::kOpenAi;               // how to decode the response body
  std::vector<std::pair<std::string, std::string>> headers;  // in sending order
};

// Builds the call for `request` on `target`. Errors have class kInvalidRequest: no messages
// and no inputs, no model where the protocol needs one, a header with a line break, or text
// that is not valid UTF-8.
Result<HttpCall> buildHttpCall(const TargetConfig& target, const Endpoint& endpoint,
                               const Request& request);

// The User-Agent header value: "hfchain/<version>".
const std::string& userAgent();

}  // namespace hfchain::transport
