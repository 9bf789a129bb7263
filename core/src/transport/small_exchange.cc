// One non-pooled HTTP exchange with the whole body read into memory.
#include "transport/small_exchange.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Timespan.h>

#include <array>
#include <memory>

#include "transport/http_call.h"

namespace hfchain::transport {

Result<SmallResponse> exchangeSmall(const Endpoint& endpoint,
                                    const Poco::Net::Context::Ptr& tls_context,
                                    const SmallRequest& request) {
  std::unique_ptr<Connection> connection = makeConnection(endpoint, tls_context);
  Poco::Net::HTTPClientSession& session = connection->session();
  const Poco::Timespan timeout(request.timeout_ms * 1000);
  session.setTimeout(timeout, timeout, timeout);
  session.setKeepAlive(false);
  const std::string url = endpoint.origin() + request.path;

  try {
    connection->connect();
  } catch (const Poco::TimeoutException&) {
    return makeError(ErrorClass::kTimeout, "connecting to " + endpoint.origin() +
                                               " took more than " +
                                               std::to_string(request.timeout_ms) + " ms");
  } catch (const Poco::Exception& e) {
    return makeError(ErrorClass::kConnectFailed,
                     "connecting to " + endpoint.origin() + " failed: " + e.displayText());
  }

  SmallResponse result;
  try {
    Poco::Net::HTTPRequest http_request(request.method, request.path,
                                        Poco::Net::HTTPMessage::HTTP_1_1);
    http_request.set("Accept", "application/json");
    http_request.set("User-Agent", userAgent());
    if (!request.authorization.empty()) http_request.set("Authorization", request.authorization);
    if (!request.body.empty()) {
      http_request.setContentType("application/json");
      http_request.setContentLength(static_cast<std::streamsize>(request.body.size()));
    }
    std::ostream& out = session.sendRequest(http_request);
    if (!request.body.empty())
      out.write(request.body.data(), static_cast<std::streamsize>(request.body.size()));

    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    result.status = static_cast<int>(response.getStatus());
    result.content_type = response.getContentType();
    result.location = response.get("Location", "");
    result.retry_after = response.get("Retry-After", "");

    std::array<char, 16 * 1024> buffer;
    while (body.read(buffer.data(), buffer.size()) || body.gcount() > 0) {
      result.body.append(buffer.data(), static_cast<size_t>(body.gcount()));
      if (result.body.size() > request.max_body_bytes) {
        return makeError(ErrorClass::kEventTooLarge, "the response of " + url + " is larger than " +
                                                         std::to_string(request.max_body_bytes) +
                                                         " bytes");
      }
    }
    if (const Poco::Exception* failure = session.networkException()) failure->rethrow();
  } catch (const Poco::TimeoutException&) {
    return makeError(ErrorClass::kTimeout,
                     "no data from " + url + " for " + std::to_string(request.timeout_ms) + " ms");
  } catch (const Poco::Exception& e) {
    return makeError(ErrorClass::kConnectionReset,
                     "the request to " + url + " failed: " + e.displayText());
  }
  return result;
}

}  // namespace hfchain::transport
