// The gateway's wire formats: request bodies of the OpenAI and TGI routes turned into
// hfchain::Request, events turned into OpenAI chunks and TGI events, and errors turned into
// HTTP statuses and error bodies.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "hfchain/error.h"
#include "hfchain/event.h"
#include "hfchain/request.h"

namespace hfchain::gateway {

// The HTTP status a caller gets for `error` when nothing was sent yet. This is the only
// place that maps error classes to statuses.
int httpStatusFor(const Error& error);

// The Retry-After value in whole seconds (rounded up) for `error`, or -1 when none applies.
int64_t retryAfterSeconds(const Error& error);

// {"error": {"message", "type", "code"}} for the OpenAI route, where `status` is the
// HTTP status the body goes with.
nlohmann::json openAiErrorBody(const Error& error, int status);
// {"error", "error_type"} for the TGI routes.
nlohmann::json tgiErrorBody(const Error& error);

// Fills `request` from an OpenAI chat completion body. Returns an error of class
// kInvalidRequest naming the field that is missing or has the wrong type.
Error parseChatBody(const nlohmann::json& body, Request& request);
// Fills `request` from a TGI {"inputs", "parameters"} body.
Error parseTgiBody(const nlohmann::json& body, Request& request);

// Builds OpenAI chat.completion.chunk objects for one completion.
class ChatChunkWriter {
 public:
  ChatChunkWriter(std::string id, std::string model, int64_t created)
      : id_(std::move(id)), model_(std::move(model)), created_(created) {}

  nlohmann::json token(const Event& event);
  nlohmann::json finish(const Event& event);

 private:
  nlohmann::json chunk(nlohmann::json delta, const nlohmann::json& finish_reason) const;

  std::string id_;
  std::string model_;
  int64_t created_;
  bool role_sent_ = false;
};

// Builds a whole chat.completion object.
nlohmann::json chatCompletion(const std::string& id, const std::string& model, int64_t created,
                              const std::string& text, const Event& finish);

// Builds TGI stream events. The final event carries generated_text and details.
class TgiEventWriter {
 public:
  nlohmann::json token(const Event& event);
  nlohmann::json finish(const Event& event, const std::string& text);

 private:
  int64_t index_ = 0;
};

// Builds the /generate response body {"generated_text", "details"}.
nlohmann::json tgiGeneration(const std::string& text, const Event& finish, int64_t tokens);

// Renders usage as OpenAI's {"prompt_tokens", "completion_tokens", "total_tokens"}.
nlohmann::json usageJson(const Usage& usage);

}  // namespace hfchain::gateway
