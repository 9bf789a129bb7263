// Headers, requests and the simple responses of response.h.
#include "hfchain/request.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <strings.h>

#include "hfchain/response.h"

namespace hfchain {
namespace {

bool sameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

const std::string* Headers::find(std::string_view name) const {
  for (const auto& [field, value] : fields_) {
    if (sameName(field, name)) return &value;
  }
  return nullptr;
}

void Headers::set(std::string name, std::string value) {
  remove(name);
  fields_.emplace_back(std::move(name), std::move(value));
}

size_t Headers::remove(std::string_view name) {
  size_t before = fields_.size();
  std::erase_if(fields_, [&](const Field& field) { return sameName(field.first, name); });
  return before - fields_.size();
}

int64_t Request::intParameter(std::string_view name, int64_t fallback) const {
  auto it = parameters.find(std::string(name));
  if (it == parameters.end() || !it->is_number()) return fallback;
  return it->get<int64_t>();
}

bool VectorEventStream::next(Event& out) {
  if (position_ >= events_.size()) return false;
  out = std::move(events_[position_++]);
  return true;
}

Response makeTextResponse(std::string text, std::string finish_reason) {
  Event token;
  token.kind = EventKind::kToken;
  token.text = text;
  Event finish;
  finish.kind = EventKind::kFinish;
  finish.finish_reason = std::move(finish_reason);
  finish.generated_text = std::move(text);
  std::vector<Event> events;
  events.push_back(std::move(token));
  events.push_back(std::move(finish));
  Response response;
  response.status = 200;
  response.stream = std::make_unique<VectorEventStream>(std::move(events));
  return response;
}

Response makeErrorResponse(Error error) {
  Event event;
  event.kind = EventKind::kError;
  event.error = error;
  std::vector<Event> events;
  events.push_back(std::move(event));
  Response response;
  response.status = error.http_status;
  response.error = std::move(error);
  response.stream = std::make_unique<VectorEventStream>(std::move(events));
  return response;
}

namespace {

// Joins a message's content: a string, null, or an array of text parts.
Error contentText(const nlohmann::json& content, size_t index, std::string& text) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (content.is_string()) {
    text = content.get<std::string>();
    return {};
  }
  if (content.is_null()) return {};
  if (!content.is_array()) {
    return makeError(ErrorClass::kInvalidRequest, where + " must be a string or an array of parts");
  }
  for (const nlohmann::json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return makeError(ErrorClass::kInvalidRequest,
                       where + " may contain only {\"type\": \"text\", \"text\": STRING} parts");
    }
    text += part["text"].get<std::string>();
  }
  return {};
}

}  // namespace

Error parseChatMessages(const nlohmann::json& messages, std::vector<Message>& out) {
  if (!messages.is_array() || messages.empty()) {
    return makeError(ErrorClass::kInvalidRequest, "messages must be a non-empty array");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& item = messages[i];
    if (!item.is_object() || !item.contains("role") || !item["role"].is_string()) {
      return makeError(ErrorClass::kInvalidRequest,
                       "messages[" + std::to_string(i) + "].role must be a string");
    }
    Message message;
    message.role = item["role"].get<std::string>();
    if (Error error = contentText(item.value("content", nlohmann::json()), i, message.content);
        !error.ok()) {
      return error;
    }
    out.push_back(std::move(message));
  }
  return {};
}

std::string keyFingerprint(std::string_view key) {
  Poco::SHA2Engine sha256(Poco::SHA2Engine::SHA_256);
  sha256.update(key.data(), static_cast<unsigned>(key.size()));
  return "key-" + Poco::DigestEngine::digestToHex(sha256.digest()).substr(0, 16);
}

}  // namespace hfchain
