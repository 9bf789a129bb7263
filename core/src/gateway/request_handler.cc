// Serves one gateway request: routing, the inbound key check, body limits, the engine call
// and the response as an OpenAI or TGI body or event stream.
#include "gateway/request_handler.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <strings.h>

#include <chrono>
#include <functional>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "gateway/wire_format.h"
#include "hfchain/log.h"
#include "hfchain/metrics.h"

namespace hfchain::gateway {
namespace {

using json = nlohmann::json;

constexpr const char* kChatRoute = "/v1/chat/completions";
constexpr const char* kGenerateRoute = "/generate";
constexpr const char* kGenerateStreamRoute = "/generate_stream";
constexpr const char* kMetricsRoute = "/metrics";
constexpr const char* kHealthRoute = "/health";

Poco::Logger& logger() { return log::get("hfchain.gateway"); }

enum class Format { kOpenAi, kTgi };

// One inbound request and the status sent for it so far.
struct Exchange {
  Poco::Net::HTTPServerRequest& http_request;
  Poco::Net::HTTPServerResponse& http_response;
  std::string id;
  std::string route;  // the metric label: a known route, or "other"
  Format format = Format::kOpenAi;
  int status = 0;  // the status sent, 0 until the response has started
};

void setCommonHeaders(Exchange& exchange) {
  exchange.http_response.set("x-hfchain-request-id", exchange.id);
}

// Forwards the x-hfchain-* headers that links set on the response, such as
// x-hfchain-served-by and x-hfchain-output-limit, which tell the caller what the chain did.
// Other response headers came from the upstream and stay behind.
void copyChainHeaders(const Headers& headers, Poco::Net::HTTPServerResponse& http) {
  constexpr std::string_view kPrefix = "x-hfchain-";
  for (const auto& [name, value] : headers.fields()) {
    if (name.size() <= kPrefix.size() ||
        strncasecmp(name.data(), kPrefix.data(), kPrefix.size()) != 0 ||
        strcasecmp(name.c_str(), "x-hfchain-request-id") == 0) {
      continue;
    }
    http.set(name, value);
  }
}

void sendBody(Exchange& exchange, int status, const std::string& content_type,
              const std::string& body) {
  exchange.status = status;
  exchange.http_response.setStatusAndReason(
      static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  exchange.http_response.setContentType(content_type);
  exchange.http_response.setContentLength(static_cast<std::streamsize>(body.size()));
  setCommonHeaders(exchange);
  exchange.http_response.send() << body;
}

void sendJson(Exchange& exchange, int status, const json& body) {
  sendBody(exchange, status, "application/json", body.dump());
}

// Sends `error` as the whole response with `status`, in the route's error format.
void sendError(Exchange& exchange, int status, const Error& error) {
  HFC_LOG_WARNING(logger(), HFC_RID(exchange.id) + exchange.http_request.getMethod() + " " +
                                exchange.route + " -> " + std::to_string(status) + " " +
                                error.describe());
  int64_t retry_after = retryAfterSeconds(error);
  if (retry_after >= 0 && (status == 429 || status == 503)) {
    exchange.http_response.set("Retry-After", std::to_string(retry_after));
  }
  json body =
      exchange.format == Format::kTgi ? tgiErrorBody(error) : openAiErrorBody(error, status);
  sendJson(exchange, status, body);
}

void sendChainError(Exchange& exchange, const Error& error) {
  sendError(exchange, httpStatusFor(error), error);
}

// Returns the bearer token of the Authorization header, or an empty string.
std::string bearerToken(const Poco::Net::HTTPServerRequest& request) {
  const std::string value = request.get("Authorization", "");
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() <= kScheme.size()) return "";
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return "";
    }
  }
  return value.substr(kScheme.size());
}

// Reads the request body into `body`; sends 413 and returns false when it exceeds `limit`.
bool readBody(Exchange& exchange, size_t limit, std::string& body) {
  const std::streamsize declared = exchange.http_request.getContentLength();
  if (declared > static_cast<std::streamsize>(limit)) {
    sendError(exchange, 413,
              makeError(ErrorClass::kInvalidRequest,
                        "the request body has " + std::to_string(declared) +
                            " bytes; the maximum is " + std::to_string(limit)));
    return false;
  }
  std::istream& in = exchange.http_request.stream();
  char buffer[16384];
  while (in) {
    in.read(buffer, sizeof(buffer));
    body.append(buffer, static_cast<size_t>(in.gcount()));
    if (body.size() > limit) {
      sendError(exchange, 413,
                makeError(ErrorClass::kInvalidRequest, "the request body exceeds the maximum of " +
                                                           std::to_string(limit) + " bytes"));
      return false;
    }
  }
  return true;
}

// Parses `text` as JSON; sends 400 naming the problem and returns false when invalid.
bool parseJson(Exchange& exchange, const std::string& text, json& out) {
  try {
    out = json::parse(text);
    return true;
  } catch (const json::exception& e) {
    sendError(exchange, 400,
              makeError(ErrorClass::kInvalidRequest,
                        std::string("the request body is not valid JSON: ") + e.what()));
    return false;
  }
}

int64_t unixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keeps a request's cancel token in the shared table while the request runs.
class ActiveRequest {
 public:
  ActiveRequest(SharedState& state, const std::string& id, CancelToken token)
      : state_(state), id_(id) {
    std::lock_guard lock(state_.active_mutex);
    state_.active.emplace(id_, std::move(token));
  }
  ~ActiveRequest() {
    std::lock_guard lock(state_.active_mutex);
    state_.active.erase(id_);
  }
  ActiveRequest(const ActiveRequest&) = delete;
  ActiveRequest& operator=(const ActiveRequest&) = delete;

 private:
  SharedState& state_;
  std::string id_;
};

// Renders one event as the bytes of an event-stream message.
using EventRenderer = std::function<std::string(const Event&)>;

std::string sseData(const json& value) { return "data: " + value.dump() + "\n\n"; }

// Sends a streamed response. Nothing is sent until the first event arrives, so that a request
// failing before it gets an HTTP error status instead of an open stream.
void streamAnswer(SharedState& state, Exchange& exchange, Request request,
                  const EventRenderer& render) {
  CancelToken cancel = request.cancel;
  ActiveRequest active(state, exchange.id, cancel);
  Response response = state.engine->stream(std::move(request));
  if (!response.ok()) {
    sendChainError(exchange, response.error);
    return;
  }
  Event event;
  if (!response.stream->next(event)) {
    sendChainError(exchange, makeError(ErrorClass::kInternal, "the chain sent no event"));
    return;
  }
  if (event.kind == EventKind::kError) {
    sendChainError(exchange, event.error);
    return;
  }

  Poco::Net::HTTPServerResponse& http = exchange.http_response;
  exchange.status = 200;
  http.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
  http.setContentType("text/event-stream");
  http.setChunkedTransferEncoding(true);
  http.set("Cache-Control", "no-cache");
  copyChainHeaders(response.headers, http);
  setCommonHeaders(exchange);
  std::ostream& out = http.send();

  bool ended = false;
  do {
    std::string bytes = render(event);
    out << bytes;
    out.flush();
    if (!out.good()) {
      // The caller went away: stop the request and close the upstream stream.
      HFC_LOG_INFO(logger(), HFC_RID(exchange.id) + "the caller disconnected; cancelling");
      cancel.cancel();
      response.stream.reset();
      Metrics::global().add("hfchain_gateway_disconnects_total", "route=\"" + exchange.route + "\"",
                            1);
      return;
    }
    if (event.kind == EventKind::kError) {
      HFC_LOG_WARNING(logger(), HFC_RID(exchange.id) + "the stream failed after data was sent: " +
                                    event.error.describe());
      Metrics::global().add("hfchain_gateway_stream_errors_total",
                            "route=\"" + exchange.route + "\"", 1);
      ended = true;
    } else if (event.kind == EventKind::kFinish) {
      ended = true;
    }
  } while (!ended && response.stream->next(event));
  if (!ended) {
    Event error;
    error.kind = EventKind::kError;
    error.error =
        makeError(ErrorClass::kStreamIncomplete, "the stream ended without a final event");
    out << render(error);
    out.flush();
  }
}

// Reads a whole answer. Returns false after answering with the error when it failed.
struct WholeAnswer {
  std::string text;
  int64_t tokens = 0;
  Event finish;
};

bool collectAnswer(SharedState& state, Exchange& exchange, Request request, WholeAnswer& answer) {
  ActiveRequest active(state, exchange.id, request.cancel);
  Response response = state.engine->stream(std::move(request));
  if (!response.ok()) {
    sendChainError(exchange, response.error);
    return false;
  }
  copyChainHeaders(response.headers, exchange.http_response);
  Event event;
  while (response.stream->next(event)) {
    if (event.kind == EventKind::kToken) {
      answer.text += event.text;
      ++answer.tokens;
    } else if (event.kind == EventKind::kError) {
      sendChainError(exchange, event.error);
      return false;
    } else {
      answer.finish = event;
      return true;
    }
  }
  sendChainError(
      exchange, makeError(ErrorClass::kStreamIncomplete, "the stream ended without a final event"));
  return false;
}

// Applies what every generation route shares: the request id, the target header, the
// caller's key and the key's tenant.
void prepareRequest(const SharedState& state, Exchange& exchange, Request& request) {
  request.id = exchange.id;
  if (request.target.empty()) {
    request.target = exchange.http_request.get("x-hfchain-target", "");
  }
  std::string key = bearerToken(exchange.http_request);
  if (key.empty()) return;
  if (auto tenant = state.key_tenants.find(key); tenant != state.key_tenants.end()) {
    request.metadata.set("tenant", tenant->second);
  }
  request.metadata.set("key", std::move(key));
}

void handleChat(SharedState& state, Exchange& exchange, const json& body) {
  Request request;
  if (Error error = parseChatBody(body, request); !error.ok()) {
    sendChainError(exchange, error);
    return;
  }
  prepareRequest(state, exchange, request);
  // An OpenAI client names what it wants in "model"; a model that is the name of a
  // configured target selects that target.
  if (request.target.empty() && !request.model.empty() &&
      state.engine->snapshot()->config().findTarget(request.model) != nullptr) {
    request.target = request.model;
    request.model.clear();
  }
  std::string model =
      body.value("model", json()).is_string() ? body["model"].get<std::string>() : request.target;
  std::string completion_id = "chatcmpl-" + exchange.id;
  const int64_t created = unixSeconds();

  if (!request.stream) {
    WholeAnswer answer;
    if (!collectAnswer(state, exchange, std::move(request), answer)) return;
    sendJson(exchange, 200,
             chatCompletion(completion_id, model, created, answer.text, answer.finish));
    return;
  }
  ChatChunkWriter writer(completion_id, model, created);
  streamAnswer(state, exchange, std::move(request), [&writer](const Event& event) {
    switch (event.kind) {
      case EventKind::kToken:
        return sseData(writer.token(event));
      case EventKind::kFinish:
        return sseData(writer.finish(event)) + "data: [DONE]\n\n";
      case EventKind::kError:
        break;
    }
    return sseData(openAiErrorBody(event.error, httpStatusFor(event.error)));
  });
}

void handleTgi(SharedState& state, Exchange& exchange, const json& body, bool stream) {
  Request request;
  if (Error error = parseTgiBody(body, request); !error.ok()) {
    sendChainError(exchange, error);
    return;
  }
  prepareRequest(state, exchange, request);
  request.stream = stream;
  if (!stream) {
    WholeAnswer answer;
    if (!collectAnswer(state, exchange, std::move(request), answer)) return;
    sendJson(exchange, 200, tgiGeneration(answer.text, answer.finish, answer.tokens));
    return;
  }
  TgiEventWriter writer;
  std::string text;
  streamAnswer(state, exchange, std::move(request), [&writer, &text](const Event& event) {
    switch (event.kind) {
      case EventKind::kToken:
        text += event.text;
        return sseData(writer.token(event));
      case EventKind::kFinish:
        return sseData(writer.finish(event, text));
      case EventKind::kError:
        break;
    }
    return sseData(tgiErrorBody(event.error));
  });
}

void handleHealth(SharedState& state, Exchange& exchange) {
  sendJson(exchange, 200,
           {{"status", "ok"}, {"generation", state.engine->snapshot()->generation()}});
}

void handleMetrics(Exchange& exchange) {
  sendBody(exchange, 200, "text/plain; version=0.0.4", Metrics::global().renderPrometheus());
}

void recordOutcome(const Exchange& exchange, std::chrono::steady_clock::time_point started) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Metrics& metrics = Metrics::global();
  const std::string route = "route=\"" + exchange.route + "\"";
  metrics.add("hfchain_gateway_requests_total",
              route + ",status=\"" + std::to_string(exchange.status) + "\"", 1);
  metrics.observe("hfchain_gateway_request_duration_seconds", route, seconds);
  HFC_LOG_DEBUG(logger(), HFC_RID(exchange.id) + exchange.http_request.getMethod() + " " +
                              exchange.route + " -> " + std::to_string(exchange.status) + " in " +
                              std::to_string(seconds) + " s");
}

// Routes a request whose method and path are known to be served.
void dispatch(SharedState& state, Exchange& exchange, const std::string& path) {
  if (path == kHealthRoute) return handleHealth(state, exchange);
  if (path == kMetricsRoute) return handleMetrics(exchange);

  if (state.stopping) {
    // A request on a kept-alive connection can still arrive while stop() drains.
    exchange.http_response.setKeepAlive(false);
    sendError(exchange, 503, makeError(ErrorClass::kInternal, "the gateway is stopping"));
    return;
  }
  if (!state.api_keys.empty() && state.api_keys.count(bearerToken(exchange.http_request)) == 0) {
    exchange.http_response.set("WWW-Authenticate", "Bearer");
    sendError(exchange, 401,
              makeError(ErrorClass::kInvalidRequest,
                        "missing or unknown API key; send Authorization: Bearer KEY"));
    return;
  }
  std::string text;
  if (!readBody(exchange, state.max_body_bytes, text)) return;
  json body;
  if (!parseJson(exchange, text, body)) return;
  if (path == kChatRoute) return handleChat(state, exchange, body);
  handleTgi(state, exchange, body, path == kGenerateStreamRoute);
}

}  // namespace

void SharedState::cancelAll() {
  std::lock_guard lock(active_mutex);
  for (auto& [id, token] : active) {
    HFC_LOG_WARNING(logger(), HFC_RID(id) + "cancelled because the gateway is stopping");
    token.cancel();
  }
}

void RequestHandler::handleRequest(Poco::Net::HTTPServerRequest& http_request,
                                   Poco::Net::HTTPServerResponse& http_response) {
  const auto started = std::chrono::steady_clock::now();
  Exchange exchange{http_request, http_response, newRequestId(), "other"};
  std::string path = http_request.getURI().substr(0, http_request.getURI().find('?'));
  const std::string& method = http_request.getMethod();
  const bool post_route =
      path == kChatRoute || path == kGenerateRoute || path == kGenerateStreamRoute;
  const bool get_route = path == kMetricsRoute || path == kHealthRoute;
  if (post_route || get_route) exchange.route = path;
  if (path == kGenerateRoute || path == kGenerateStreamRoute) exchange.format = Format::kTgi;

  try {
    if (!post_route && !get_route) {
      sendError(exchange, 404,
                makeError(ErrorClass::kInvalidRequest, "no route " + method + " " + path));
    } else if ((post_route && method != "POST") || (get_route && method != "GET")) {
      http_response.set("Allow", post_route ? "POST" : "GET");
      sendError(exchange, 405,
                makeError(ErrorClass::kInvalidRequest,
                          "method " + method + " is not allowed on " + path));
    } else {
      dispatch(state_, exchange, path);
    }
  } catch (const std::exception& e) {
    // Poco reports socket failures as exceptions, so they end here, at the library edge.
    HFC_LOG_ERROR(logger(),
                  HFC_RID(exchange.id) + "failed while serving " + path + ": " + e.what());
    if (!http_response.sent()) {
      try {
        sendError(exchange, 500, makeError(ErrorClass::kInternal, "internal gateway error"));
      } catch (const std::exception& again) {
        HFC_LOG_ERROR(logger(), HFC_RID(exchange.id) + "cannot send the error: " + again.what());
      }
    }
    if (exchange.status == 0) exchange.status = 500;
  }
  recordOutcome(exchange, started);
}

}  // namespace hfchain::gateway
