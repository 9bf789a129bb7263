// Request parsing, event rendering and the error-to-status map of the gateway.
#include "gateway/wire_format.h"

#include <cmath>
#include <string_view>

namespace hfchain::gateway {
namespace {

using json = nlohmann::json;

Error invalid(std::string message) {
  return makeError(ErrorClass::kInvalidRequest, std::move(message));
}

Error copyNumber(const json& body, const char* name, const char* parameter, Request& request) {
  if (!body.contains(name) || body[name].is_null()) return {};
  if (!body[name].is_number()) return invalid(std::string(name) + " must be a number");
  request.parameters[parameter] = body[name];
  return {};
}

Error copyInteger(const json& body, const char* name, const char* parameter, Request& request) {
  if (!body.contains(name) || body[name].is_null()) return {};
  if (!body[name].is_number_integer()) return invalid(std::string(name) + " must be an integer");
  request.parameters[parameter] = body[name];
  return {};
}

Error copyStop(const json& body, Request& request) {
  if (!body.contains("stop") || body["stop"].is_null()) return {};
  const json& stop = body["stop"];
  if (stop.is_string()) {
    request.parameters["stop"] = json::array({stop});
    return {};
  }
  if (stop.is_array()) {
    for (const json& item : stop) {
      if (!item.is_string()) return invalid("stop must be a string or an array of strings");
    }
    request.parameters["stop"] = stop;
    return {};
  }
  return invalid("stop must be a string or an array of strings");
}

// OpenAI's "type" field groups statuses the way OpenAI's own API does.
const char* openAiErrorType(int status) {
  if (status == 401 || status == 403) return "authentication_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

}  // namespace

int httpStatusFor(const Error& error) {
  const int upstream = error.http_status;
  switch (error.cls) {
    case ErrorClass::kInvalidRequest:
    case ErrorClass::kContextOverflow:
      return 400;
    case ErrorClass::kUpstreamValidation:
      return upstream >= 400 && upstream < 500 ? upstream : 422;
    case ErrorClass::kUpstreamAuth:
      return upstream == 401 || upstream == 403 ? upstream : 401;
    case ErrorClass::kUpstreamNotFound:
      return 404;
    case ErrorClass::kRateLimited:
      return 429;
    case ErrorClass::kBudgetExceeded:
      // A request that can never fit a context window is a 400 that retrying cannot mend;
      // a spent budget is a 429 that passes when the window resets. The link says which.
      return upstream == 400 ? 400 : 429;
    case ErrorClass::kCircuitOpen:
    case ErrorClass::kModelLoading:
      return 503;
    case ErrorClass::kTimeout:
      return 504;
    case ErrorClass::kConnectFailed:
    case ErrorClass::kUpstream5xx:
    case ErrorClass::kUpstreamGeneration:
    case ErrorClass::kConnectionReset:
    case ErrorClass::kStreamIncomplete:
    case ErrorClass::kStreamParse:
    case ErrorClass::kEventTooLarge:
      return 502;
    default:
      return 500;
  }
}

int64_t retryAfterSeconds(const Error& error) {
  if (error.retry_after_ms >= 0) return (error.retry_after_ms + 999) / 1000;
  if (error.cls == ErrorClass::kModelLoading && error.estimated_time_s >= 0) {
    return static_cast<int64_t>(std::ceil(error.estimated_time_s));
  }
  return -1;
}

json openAiErrorBody(const Error& error, int status) {
  return {{"error",
           {{"message", error.message},
            {"type", openAiErrorType(status)},
            {"code", std::string(errorClassName(error.cls))}}}};
}

json tgiErrorBody(const Error& error) {
  return {{"error", error.message}, {"error_type", std::string(errorClassName(error.cls))}};
}

Error parseChatBody(const json& body, Request& request) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  if (!body.contains("messages")) return invalid("messages must be a non-empty array");
  if (Error error = parseChatMessages(body["messages"], request.messages); !error.ok()) {
    return error;
  }

  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) return invalid("model must be a string");
    request.model = body["model"].get<std::string>();
  }
  if (body.contains("target") && !body["target"].is_null()) {
    if (!body["target"].is_string()) return invalid("target must be a string");
    request.target = body["target"].get<std::string>();
  }

  request.stream = false;
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return invalid("stream must be true or false");
    request.stream = body["stream"].get<bool>();
  }

  // max_completion_tokens is the newer name; it wins when both are given.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (Error error = copyInteger(body, name, "max_new_tokens", request); !error.ok()) {
      return error;
    }
  }
  if (Error error = copyInteger(body, "seed", "seed", request); !error.ok()) return error;
  if (Error error = copyNumber(body, "temperature", "temperature", request); !error.ok()) {
    return error;
  }
  if (Error error = copyNumber(body, "top_p", "top_p", request); !error.ok()) return error;
  return copyStop(body, request);
}

Error parseTgiBody(const json& body, Request& request) {
  if (!body.is_object()) return invalid("the request body must be a JSON object");
  if (!body.contains("inputs") || !body["inputs"].is_string()) {
    return invalid("inputs must be a string");
  }
  request.inputs = body["inputs"].get<std::string>();
  if (request.inputs.empty()) return invalid("inputs must not be empty");
  if (body.contains("parameters") && !body["parameters"].is_null()) {
    if (!body["parameters"].is_object()) return invalid("parameters must be an object");
    request.parameters = body["parameters"];
  }
  if (body.contains("target") && !body["target"].is_null()) {
    if (!body["target"].is_string()) return invalid("target must be a string");
    request.target = body["target"].get<std::string>();
  }
  return {};
}

json usageJson(const Usage& usage) {
  json out = json::object();
  if (usage.prompt_tokens >= 0) out["prompt_tokens"] = usage.prompt_tokens;
  if (usage.completion_tokens >= 0) out["completion_tokens"] = usage.completion_tokens;
  if (usage.total_tokens >= 0) {
    out["total_tokens"] = usage.total_tokens;
  } else if (usage.prompt_tokens >= 0 && usage.completion_tokens >= 0) {
    out["total_tokens"] = usage.prompt_tokens + usage.completion_tokens;
  }
  return out;
}

json ChatChunkWriter::chunk(json delta, const json& finish_reason) const {
  return {{"id", id_},
          {"object", "chat.completion.chunk"},
          {"created", created_},
          {"model", model_},
          {"choices", json::array({{{"index", 0},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason}}})}};
}

json ChatChunkWriter::token(const Event& event) {
  json delta = {{"content", event.text}};
  if (!role_sent_) {
    delta["role"] = "assistant";
    role_sent_ = true;
  }
  return chunk(std::move(delta), nullptr);
}

json ChatChunkWriter::finish(const Event& event) {
  json delta = json::object();
  if (!role_sent_) {
    delta["role"] = "assistant";
    role_sent_ = true;
  }
  json out = chunk(std::move(delta), event.finish_reason.empty() ? "stop" : event.finish_reason);
  if (event.usage.present()) out["usage"] = usageJson(event.usage);
  return out;
}

json chatCompletion(const std::string& id, const std::string& model, int64_t created,
                    const std::string& text, const Event& finish) {
  json out = {
      {"id", id},
      {"object", "chat.completion"},
      {"created", created},
      {"model", model},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", text}}},
                                {"logprobs", nullptr},
                                {"finish_reason",
                                 finish.finish_reason.empty() ? "stop" : finish.finish_reason}}})}};
  if (finish.usage.present()) out["usage"] = usageJson(finish.usage);
  return out;
}

json TgiEventWriter::token(const Event& event) {
  ++index_;
  json token = {{"id", event.token_id >= 0 ? event.token_id : 0},
                {"text", event.text},
                {"logprob", event.logprob.value_or(0.0)},
                {"special", event.special}};
  return {{"index", index_}, {"token", token}, {"generated_text", nullptr}, {"details", nullptr}};
}

json TgiEventWriter::finish(const Event& event, const std::string& text) {
  // TGI puts the whole text on its last token event. The engine's finish event carries no
  // token, so the gateway sends an empty special token with it.
  ++index_;
  json token = {{"id", 0}, {"text", ""}, {"logprob", 0.0}, {"special", true}};
  json details = {
      {"finish_reason", event.finish_reason.empty() ? "stop" : event.finish_reason},
      {"generated_tokens",
       event.usage.completion_tokens >= 0 ? event.usage.completion_tokens : index_ - 1}};
  return {{"index", index_},
          {"token", token},
          {"generated_text", event.generated_text.empty() ? text : event.generated_text},
          {"details", details}};
}

json tgiGeneration(const std::string& text, const Event& finish, int64_t tokens) {
  json details = {{"finish_reason", finish.finish_reason.empty() ? "stop" : finish.finish_reason},
                  {"generated_tokens",
                   finish.usage.completion_tokens >= 0 ? finish.usage.completion_tokens : tokens}};
  return {{"generated_text", finish.generated_text.empty() ? text : finish.generated_text},
          {"details", details}};
}

}  // namespace hfchain::gateway
