// Transport::send: one HTTP exchange per request, from connect to the first byte of the body.
#include "hfchain/transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/String.h>
#include <Poco/Timespan.h>

#include <array>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "hfchain/decoders.h"
#include "hfchain/log.h"
#include "transport/body_reader.h"
#include "transport/connection_pool.h"
#include "transport/deadlines.h"
#include "transport/http_call.h"
#include "transport/http_event_stream.h"
#include "transport/redactor.h"

namespace hfchain {
namespace {

using transport::BodyReader;
using transport::ConnectionPool;
using transport::Deadlines;
using transport::Limit;

// Error bodies are read up to this size to find the upstream's message; the rest is dropped
// and the connection closed.
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;

// Response headers passed on to the caller, lower-case.
constexpr std::array<std::string_view, 8> kPassedHeaders = {
    "content-type",   "retry-after", "x-request-id",         "x-compute-type",
    "x-compute-time", "x-sha",       "x-inference-provider", "x-ratelimit-remaining"};

constexpr std::string_view kServedByHeader = "x-hfchain-served-by";

Poco::Logger& logger() { return log::get("hfchain.transport"); }

Poco::Timespan timespanMs(int64_t ms) { return Poco::Timespan(ms * 1000); }

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Logs a warning for a target with tls_verify false, once per target name and process.
void warnTlsVerifyDisabled(const std::string& target) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard lock(mutex);
  if (!warned.insert(target).second) return;
  HFC_LOG_WARNING(logger(), "target " + inQuotes(target) +
                                " has tls_verify false: its server certificate is not verified, "
                                "so anyone on the network path can read its traffic and token");
}

Result<bool> validateTimeouts(const TargetConfig& config) {
  const std::array<std::pair<std::string_view, int64_t>, 4> values = {{
      {"timeouts.connect_ms", config.timeouts.connect_ms},
      {"timeouts.first_byte_ms", config.timeouts.first_byte_ms},
      {"timeouts.idle_ms", config.timeouts.idle_ms},
      {"timeouts.total_ms", config.timeouts.total_ms},
  }};
  for (const auto& [name, value] : values) {
    if (value <= 0) {
      return makeError(ErrorClass::kConfigRejected,
                       "target " + inQuotes(config.name) + " " + std::string(name) +
                           " must be a positive number of milliseconds, got " +
                           std::to_string(value));
    }
  }
  if (config.max_event_bytes == 0) {
    return makeError(ErrorClass::kConfigRejected,
                     "target " + inQuotes(config.name) + " max_event_bytes must be positive");
  }
  return true;
}

// Collects the events of a whole (non-streamed) body.
class CollectingSink final : public EventSink {
 public:
  void onEvent(const Event& event) override { events.push_back(event); }
  std::vector<Event> events;
};

// Maps an exception of the connect step to a typed error.
Error connectError(const Poco::Exception& e, const std::string& origin) {
  std::string message;
  if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&e) != nullptr) {
    message = "connection to " + origin + " was refused";
  } else if (dynamic_cast<const Poco::Net::DNSException*>(&e) != nullptr) {
    message = "the host of " + origin + " could not be resolved: " + e.displayText();
  } else if (dynamic_cast<const Poco::Net::SSLException*>(&e) != nullptr) {
    message = "TLS handshake with " + origin + " failed: " + e.displayText();
  } else {
    message = "connecting to " + origin + " failed: " + e.displayText();
  }
  return makeError(ErrorClass::kConnectFailed, std::move(message));
}

// Maps an exception of the request/response-header step to a typed error.
Error exchangeError(const Poco::Exception& e, const std::string& origin, bool reused) {
  const std::string connection =
      reused ? "the reused keep-alive connection to " + origin : "the connection to " + origin;
  if (dynamic_cast<const Poco::Net::NoMessageException*>(&e) != nullptr) {
    return makeError(ErrorClass::kConnectionReset,
                     connection + " was closed before a response status arrived");
  }
  if (dynamic_cast<const Poco::Net::SSLException*>(&e) != nullptr) {
    return makeError(ErrorClass::kConnectFailed,
                     "TLS with " + origin + " failed: " + e.displayText());
  }
  if (dynamic_cast<const Poco::Net::MessageException*>(&e) != nullptr) {
    return makeError(ErrorClass::kStreamParse,
                     "invalid HTTP response from " + origin + ": " + e.displayText());
  }
  return makeError(ErrorClass::kConnectionReset,
                   connection + " broke during the request: " + e.displayText());
}

}  // namespace

Transport::Transport(TargetConfig config, std::shared_ptr<transport::ConnectionPool> pool)
    : config_(std::move(config)), pool_(std::move(pool)) {}

Transport::~Transport() = default;

Result<std::shared_ptr<Transport>> Transport::create(const TargetConfig& config) {
  auto endpoint =
      transport::parseEndpoint(config.base_url, "target " + inQuotes(config.name) + " base_url");
  if (!endpoint) return endpoint.error();
  if (auto valid = validateTimeouts(config); !valid) return valid.error();

  Poco::Net::Context::Ptr tls_context;
  if (endpoint->tls) {
    auto context = transport::makeClientTlsContext(config.tls_verify, config.ca_file,
                                                   "target " + inQuotes(config.name));
    if (!context) return context.error();
    tls_context = *context;
    if (!config.tls_verify) warnTlsVerifyDisabled(config.name);
  }
  auto pool = std::make_shared<ConnectionPool>(std::move(endpoint).value(), tls_context);
  return std::shared_ptr<Transport>(new Transport(config, std::move(pool)));
}

TransportStats Transport::stats() const {
  TransportStats stats;
  stats.connections_opened = pool_->connectionsOpened();
  stats.connections_reused = pool_->connectionsReused();
  stats.idle_connections = pool_->idleCount();
  return stats;
}

namespace {

// The state of one send() call, split out so that each step can return early.
class Exchange {
 public:
  Exchange(const TargetConfig& config, std::shared_ptr<ConnectionPool> pool, Request& request)
      : config_(config),
        pool_(std::move(pool)),
        request_(request),
        request_id_(request.id.empty() ? "-" : request.id),
        deadlines_(config.timeouts, request.deadline, Clock::now()) {
    redactor_.addSecret(config.token.value);
  }

  Response run();

 private:
  Response fail(Error error, int status = 0, Headers headers = {});
  Response answer(std::unique_ptr<BodyReader> reader, const Poco::Net::HTTPResponse& http,
                  Headers headers);
  Response answerError(BodyReader& reader, const Poco::Net::HTTPResponse& http, Headers headers);
  Response answerWhole(BodyReader& reader, const Poco::Net::HTTPResponse& http, Headers headers);
  Headers passedHeaders(const Poco::Net::HTTPResponse& http) const;
  std::string log(std::string message) const { return HFC_RID(request_id_) + message; }

  const TargetConfig& config_;
  std::shared_ptr<ConnectionPool> pool_;
  Request& request_;
  std::string request_id_;
  Deadlines deadlines_;
  transport::Redactor redactor_;
  transport::HttpCall call_;
  std::string url_;
};

Response Exchange::fail(Error error, int status, Headers headers) {
  if (error.target.empty()) error.target = config_.name;
  redactor_.apply(error);
  HFC_LOG_WARNING(logger(), log(error.describe()));
  Response response;
  response.status = status;
  response.headers = std::move(headers);
  response.headers.set(std::string(kServedByHeader), config_.name);
  response.error = error;
  Event event;
  event.kind = EventKind::kError;
  event.error = std::move(error);
  event.served_by = config_.name;
  std::vector<Event> events;
  events.push_back(std::move(event));
  response.stream = std::make_unique<VectorEventStream>(std::move(events));
  return response;
}

Headers Exchange::passedHeaders(const Poco::Net::HTTPResponse& http) const {
  Headers headers;
  for (const auto& [name, value] : http) {
    const std::string lower = Poco::toLower(name);
    for (std::string_view passed : kPassedHeaders) {
      if (lower == passed) headers.add(lower, value);
    }
  }
  headers.set(std::string(kServedByHeader), config_.name);
  return headers;
}

Response Exchange::run() {
  auto call = transport::buildHttpCall(config_, pool_->endpoint(), request_);
  if (!call) return fail(call.error());
  call_ = std::move(call).value();
  for (const auto& [name, value] : call_.headers) {
    if (Poco::icompare(name, "Authorization") == 0) redactor_.addAuthorization(value);
  }
  const std::string origin = pool_->endpoint().origin();
  url_ = origin + call_.path;
  HFC_LOG_DEBUG(logger(), log("POST " + url_ + " (target " + inQuotes(config_.name) + ")"));

  if (request_.cancel.cancelled()) return fail(transport::cancelledError(config_.name));
  ConnectionPool::Lease lease = pool_->acquire();
  Poco::Net::HTTPClientSession& session = lease.connection->session();

  if (!lease.reused) {
    const auto now = Clock::now();
    const Limit limit = deadlines_.connect(now);
    if (limit.expired(now)) return fail(deadlines_.timeoutError(limit, config_.name));
    const Poco::Timespan timeout = timespanMs(limit.remainingMs(now));
    session.setTimeout(timeout, timeout, timeout);
    try {
      lease.connection->connect();
    } catch (const Poco::TimeoutException&) {
      ConnectionPool::discard(std::move(lease.connection));
      return fail(deadlines_.timeoutError(limit, config_.name));
    } catch (const Poco::Exception& e) {
      ConnectionPool::discard(std::move(lease.connection));
      return fail(connectError(e, origin));
    }
  }

  const auto now = Clock::now();
  const Limit limit = deadlines_.firstByte(now);
  if (limit.expired(now)) {
    ConnectionPool::discard(std::move(lease.connection));
    return fail(deadlines_.timeoutError(limit, config_.name));
  }

  Poco::Net::HTTPRequest http(Poco::Net::HTTPRequest::HTTP_POST, call_.path,
                              Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [name, value] : call_.headers) http.set(name, value);
  http.setContentLength(static_cast<std::streamsize>(call_.body.size()));
  http.setKeepAlive(true);

  Poco::Net::HTTPResponse response;
  std::istream* body = nullptr;
  try {
    const Poco::Timespan timeout = timespanMs(limit.remainingMs(now));
    // Poco uses the connect timeout again if it has to reopen a pooled connection whose
    // write failed; the first-byte limit bounds that too.
    session.setTimeout(timeout, timeout, timeout);
    session.socket().setSendTimeout(timeout);
    session.socket().setReceiveTimeout(timeout);
    std::ostream& out = session.sendRequest(http);
    out.exceptions(std::ios::badbit);
    out.write(call_.body.data(), static_cast<std::streamsize>(call_.body.size()));
    out.flush();
    transport::CancelWatch watch(session.socket(), request_.cancel);
    body = &session.receiveResponse(response);
  } catch (const Poco::TimeoutException&) {
    ConnectionPool::discard(std::move(lease.connection));
    return fail(deadlines_.timeoutError(limit, config_.name));
  } catch (const Poco::Exception& e) {
    ConnectionPool::discard(std::move(lease.connection));
    if (request_.cancel.cancelled()) return fail(transport::cancelledError(config_.name));
    return fail(exchangeError(e, origin, lease.reused));
  } catch (const std::exception& e) {
    if (request_.cancel.cancelled()) {
      ConnectionPool::discard(std::move(lease.connection));
      return fail(transport::cancelledError(config_.name));
    }
    // A stream error without a Poco exception: the session recorded the cause, if any.
    const Poco::Exception* cause = session.networkException();
    Error error = cause != nullptr
                      ? exchangeError(*cause, origin, lease.reused)
                      : makeError(ErrorClass::kConnectionReset,
                                  "sending the request to " + origin + " failed: " + e.what());
    ConnectionPool::discard(std::move(lease.connection));
    return fail(std::move(error));
  }

  const int status = static_cast<int>(response.getStatus());
  HFC_LOG_DEBUG(logger(), log("POST " + url_ + " -> " + std::to_string(status)));
  const bool reusable = response.getKeepAlive() &&
                        (response.getChunkedTransferEncoding() || response.hasContentLength());
  auto reader = std::make_unique<BodyReader>(
      pool_, std::move(lease.connection), *body, reusable,
      transport::ExchangeInfo{config_.name, request_id_, deadlines_, request_.cancel});
  return answer(std::move(reader), response, passedHeaders(response));
}

Response Exchange::answer(std::unique_ptr<BodyReader> reader, const Poco::Net::HTTPResponse& http,
                          Headers headers) {
  const int status = static_cast<int>(http.getStatus());
  if (status >= 300) return answerError(*reader, http, std::move(headers));

  const std::string content_type = Poco::toLower(http.getContentType());
  if (content_type.rfind("text/event-stream", 0) != 0) {
    return answerWhole(*reader, http, std::move(headers));
  }
  DecoderOptions options;
  options.max_event_bytes = config_.max_event_bytes;
  Response result;
  result.status = status;
  result.headers = std::move(headers);
  result.stream = std::make_unique<transport::HttpEventStream>(
      std::move(reader), makeStreamDecoder(call_.format, options), redactor_);
  return result;
}

Response Exchange::answerError(BodyReader& reader, const Poco::Net::HTTPResponse& http,
                               Headers headers) {
  const int status = static_cast<int>(http.getStatus());
  bool truncated = false;
  auto body = reader.readAll(kMaxErrorBodyBytes, truncated);
  reader.release();
  const std::string retry_after = http.get("Retry-After", "");
  Error error =
      parseUpstreamError(status, http.getContentType(), body ? *body : std::string(), retry_after);
  if (!body) {
    error.message += " (reading the error body failed: " + body.error().message + ")";
  }
  error.http_status = status;
  error.target = config_.name;
  return fail(std::move(error), status, std::move(headers));
}

Response Exchange::answerWhole(BodyReader& reader, const Poco::Net::HTTPResponse& http,
                               Headers headers) {
  const int status = static_cast<int>(http.getStatus());
  bool truncated = false;
  auto body = reader.readAll(config_.max_event_bytes, truncated);
  reader.release();
  if (!body) return fail(body.error(), status, std::move(headers));
  if (truncated) {
    Error error = makeError(ErrorClass::kEventTooLarge,
                            "the response body of target " + inQuotes(config_.name) +
                                " is larger than max_event_bytes (" +
                                std::to_string(config_.max_event_bytes) + " bytes)");
    return fail(std::move(error), status, std::move(headers));
  }

  CollectingSink sink;
  decodeCompleteBody(call_.format, *body, sink);
  if (!sink.events.empty() && sink.events.front().kind == EventKind::kError) {
    Error error = sink.events.front().error;
    error.http_status = error.http_status == 0 ? status : error.http_status;
    return fail(std::move(error), status, std::move(headers));
  }
  for (Event& event : sink.events) {
    event.served_by = config_.name;
    if (event.kind == EventKind::kError) {
      if (event.error.target.empty()) event.error.target = config_.name;
      redactor_.apply(event.error);
    }
  }
  Response result;
  result.status = status;
  result.headers = std::move(headers);
  result.stream = std::make_unique<VectorEventStream>(std::move(sink.events));
  return result;
}

}  // namespace

Response Transport::send(Request& request) {
  try {
    return Exchange(config_, pool_, request).run();
  } catch (const std::exception& e) {
    // Every expected failure is mapped above; this keeps a bug from escaping as an exception.
    Error error =
        makeError(ErrorClass::kInternal, std::string("transport failed unexpectedly: ") + e.what());
    error.target = config_.name;
    return makeErrorResponse(std::move(error));
  }
}

}  // namespace hfchain
