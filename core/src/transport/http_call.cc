// Request bodies and paths of the TGI, OpenAI-compatible and serverless protocols.
#include "transport/http_call.h"

#include <Poco/URI.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <string_view>

namespace hfchain::transport {
namespace {

using nlohmann::json;

#ifndef HFCHAIN_VERSION
#define HFCHAIN_VERSION "0.0.0"
#endif

// TGI generation parameters that OpenAI-compatible servers do not define. They are left out
// of chat bodies because strict servers reject unknown fields; max_new_tokens is renamed.
constexpr std::array<std::string_view, 11> kTgiOnlyParameters = {
    "details",          "decoder_input_details",
    "return_full_text", "do_sample",
    "watermark",        "best_of",
    "truncate",         "typical_p",
    "top_n_tokens",     "adapter_id",
    "grammar",
};

// Fields of a chat body that the transport sets itself; parameters cannot replace them.
constexpr std::array<std::string_view, 4> kChatBodyFields = {"model", "messages", "stream",
                                                             "stream_options"};

// Headers that frame the HTTP message; they are set by the transport and never copied from
// target or request headers.
constexpr std::array<std::string_view, 5> kFramingHeaders = {
    "host", "content-length", "transfer-encoding", "connection", "expect"};

template <size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool isFramingHeader(std::string_view name) {
  return std::any_of(kFramingHeaders.begin(), kFramingHeaders.end(),
                     [&](std::string_view framing) { return equalsIgnoreCase(name, framing); });
}

Error invalid(std::string message) {
  return makeError(ErrorClass::kInvalidRequest, std::move(message));
}

bool validHeaderName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool validHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Sets `name` to `value`, replacing an earlier field of the same name (ignoring case).
void setHeader(std::vector<std::pair<std::string, std::string>>& headers, const std::string& name,
               const std::string& value) {
  headers.erase(
      std::remove_if(headers.begin(), headers.end(),
                     [&](const auto& field) { return equalsIgnoreCase(field.first, name); }),
      headers.end());
  headers.emplace_back(name, value);
}

Result<bool> copyHeaders(const Headers& source, std::string_view origin,
                         std::vector<std::pair<std::string, std::string>>& headers) {
  for (const auto& [name, value] : source.fields()) {
    if (!validHeaderName(name)) {
      return invalid(std::string(origin) + " header name \"" + name + "\" is not a valid token");
    }
    // The value is not echoed: it may be a credential.
    if (!validHeaderValue(value)) {
      return invalid(std::string(origin) + " header \"" + name +
                     "\" contains a line break or NUL character");
    }
    if (isFramingHeader(name)) continue;
    setHeader(headers, name, value);
  }
  return true;
}

std::string modelOf(const TargetConfig& target, const Request& request) {
  return request.model.empty() ? target.model : request.model;
}

json chatMessages(const Request& request) {
  json messages = json::array();
  if (request.isChat()) {
    for (const Message& message : request.messages) {
      messages.push_back({{"role", message.role}, {"content", message.content}});
    }
  } else {
    messages.push_back({{"role", "user"}, {"content", request.inputs}});
  }
  return messages;
}

json openAiBody(const Request& request, const std::string& model) {
  json body = json::object();
  if (!model.empty()) body["model"] = model;
  body["messages"] = chatMessages(request);
  body["stream"] = request.stream;
  if (request.stream) body["stream_options"] = {{"include_usage", true}};

  const json& parameters = request.parameters;
  if (!parameters.is_object()) return body;
  for (const auto& [name, value] : parameters.items()) {
    if (contains(kChatBodyFields, name) || contains(kTgiOnlyParameters, name)) continue;
    if (name == "max_new_tokens") {
      if (!parameters.contains("max_tokens")) body["max_tokens"] = value;
      continue;
    }
    body[name] = value;
  }
  return body;
}

json tgiBody(const Request& request, bool stream_field) {
  json parameters = request.parameters.is_object() ? request.parameters : json::object();
  // /generate responses carry the finish reason and token counts only with details.
  if (!request.stream && !parameters.contains("details")) parameters["details"] = true;
  json body = {{"inputs", request.inputs}, {"parameters", std::move(parameters)}};
  if (stream_field) body["stream"] = request.stream;
  return body;
}

// Encodes a model id for a path: "org/name" keeps its slash, other reserved characters are
// percent-encoded.
std::string modelPath(const std::string& model) {
  std::string encoded;
  Poco::URI::encode(model, "?#%;", encoded);
  return encoded;
}

}  // namespace

const std::string& userAgent() {
  static const std::string kUserAgent = std::string("hfchain/") + HFCHAIN_VERSION;
  return kUserAgent;
}

Result<HttpCall> buildHttpCall(const TargetConfig& target, const Endpoint& endpoint,
                               const Request& request) {
  if (!request.isChat() && request.inputs.empty()) {
    return invalid("request has neither messages nor inputs");
  }
  const std::string model = modelOf(target, request);
  const std::string& base = endpoint.base_path;

  HttpCall call;
  call.stream = request.stream;
  json body;
  switch (target.protocol) {
    case Protocol::kTgi:
      if (request.isChat()) {
        call.path = base + "/v1/chat/completions";
        call.format = StreamFormat::kOpenAi;
        body = openAiBody(request, model);
      } else {
        call.path = base + (request.stream ? "/generate_stream" : "/generate");
        call.format = StreamFormat::kTgi;
        body = tgiBody(request, /*stream_field=*/false);
      }
      break;
    case Protocol::kOpenAi: {
      const bool has_version = base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0;
      call.path = base + (has_version ? "/chat/completions" : "/v1/chat/completions");
      call.format = StreamFormat::kOpenAi;
      body = openAiBody(request, model);
      break;
    }
    case Protocol::kHfServerless:
      if (model.empty()) {
        return invalid("target \"" + target.name +
                       "\" uses the serverless protocol, which needs a model: set the "
                       "target's model or the request's model");
      }
      call.path = base + "/models/" + modelPath(model);
      if (request.isChat()) {
        call.path += "/v1/chat/completions";
        call.format = StreamFormat::kOpenAi;
        body = openAiBody(request, model);
      } else {
        call.format = StreamFormat::kTgi;
        body = tgiBody(request, /*stream_field=*/true);
      }
      break;
  }

  try {
    call.body = body.dump();
  } catch (const json::exception& e) {
    return invalid(std::string("request text is not valid UTF-8: ") + e.what());
  }

  setHeader(call.headers, "Content-Type", "application/json");
  setHeader(call.headers, "Accept", request.stream ? "text/event-stream" : "application/json");
  setHeader(call.headers, "User-Agent", userAgent());
  if (auto copied = copyHeaders(target.headers, "target", call.headers); !copied) {
    return copied.error();
  }
  if (auto copied = copyHeaders(request.headers, "request", call.headers); !copied) {
    return copied.error();
  }
  const bool has_authorization =
      std::any_of(call.headers.begin(), call.headers.end(),
                  [](const auto& field) { return equalsIgnoreCase(field.first, "Authorization"); });
  if (!has_authorization && !target.token.empty()) {
    if (!validHeaderValue(target.token.value)) {
      return invalid("the token of target \"" + target.name + "\" from " + target.token.describe() +
                     " contains a line break or NUL character");
    }
    call.headers.emplace_back("Authorization", "Bearer " + target.token.value);
  }
  return call;
}

}  // namespace hfchain::transport
