// ChatTemplate: parsing, loading from tokenizer_config.json and rendering with the variables
// transformers passes to apply_chat_template.
#include "hfchain/chat_template.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chat_template/ast.h"
#include "chat_template/evaluator.h"
#include "chat_template/lexer.h"

namespace hfchain {

using chat_template::Value;
using chat_template::ValueDict;
using chat_template::ValueList;

struct ChatTemplate::Impl {
  std::string name;
  std::string source;
  ChatTemplateTokens tokens;
  chat_template::NodeList nodes;
  chat_template::RenderLimits limits;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;

Result<ChatTemplateConstSharedPtr> ChatTemplate::parse(std::string_view source,
                                                       ChatTemplateTokens tokens,
                                                       std::string_view source_name) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::string(source_name);
  impl->source = std::string(source);
  impl->tokens = std::move(tokens);
  try {
    impl->nodes = chat_template::parseTemplate(impl->source);
  } catch (const chat_template::SyntaxError& error) {
    chat_template::SourcePositions positions(impl->source);
    return makeError(ErrorClass::kConfigRejected,
                     "chat template " + impl->name + ": line " +
                         std::to_string(positions.line(error.offset)) + ", column " +
                         std::to_string(positions.column(error.offset)) + ": " + error.message);
  }
  return ChatTemplateConstSharedPtr(new ChatTemplate(std::move(impl)));
}

namespace {

// A special token is a string or, in older files, an AddedToken object with "content".
std::string tokenText(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

}  // namespace

Result<ChatTemplateConstSharedPtr> ChatTemplate::fromTokenizerConfig(
    const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return makeError(ErrorClass::kConfigRejected, "cannot open " + path.string());
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(contents.str());
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorClass::kConfigRejected,
                     path.string() + " is not valid JSON: " + error.what());
  }
  if (!config.is_object()) {
    return makeError(ErrorClass::kConfigRejected, path.string() + " is not a JSON object");
  }
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    return makeError(ErrorClass::kConfigRejected, path.string() + " has no chat_template");
  }
  std::string source;
  if (it->is_string()) {
    source = it->get<std::string>();
  } else if (it->is_array()) {
    // Named templates: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
    bool found = false;
    for (const auto& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        source = entry["template"].get<std::string>();
        found = true;
        break;
      }
    }
    if (!found) {
      return makeError(ErrorClass::kConfigRejected,
                       path.string() + ": chat_template lists no template named \"default\"");
    }
  } else {
    return makeError(
        ErrorClass::kConfigRejected,
        path.string() + ": chat_template must be a string or a list of named templates");
  }
  ChatTemplateTokens tokens{tokenText(config, "bos_token"), tokenText(config, "eos_token"),
                            tokenText(config, "pad_token"), tokenText(config, "unk_token")};
  return parse(source, std::move(tokens), path.string());
}

Result<std::string> ChatTemplate::render(const std::vector<Message>& messages,
                                         bool add_generation_prompt) const {
  ValueList message_values;
  message_values.reserve(messages.size());
  for (const Message& message : messages) {
    ValueDict entry;
    entry.set("role", Value(message.role));
    entry.set("content", Value(message.content));
    message_values.emplace_back(std::move(entry));
  }
  ValueDict globals;
  globals.set("messages", Value(std::move(message_values)));
  // transformers passes the special tokens map, which leaves out tokens that are not set.
  const ChatTemplateTokens& tokens = impl_->tokens;
  if (!tokens.bos_token.empty()) globals.set("bos_token", Value(tokens.bos_token));
  if (!tokens.eos_token.empty()) globals.set("eos_token", Value(tokens.eos_token));
  if (!tokens.pad_token.empty()) globals.set("pad_token", Value(tokens.pad_token));
  if (!tokens.unk_token.empty()) globals.set("unk_token", Value(tokens.unk_token));
  globals.set("add_generation_prompt", Value(add_generation_prompt));
  globals.set("tools", Value(chat_template::None{}));

  std::size_t offset = 0;
  try {
    return chat_template::evaluate(impl_->nodes, globals, impl_->limits, offset);
  } catch (const chat_template::RenderError& error) {
    if (error.raisedByTemplate()) return makeError(ErrorClass::kInvalidRequest, error.what());
    chat_template::SourcePositions positions(impl_->source);
    return makeError(ErrorClass::kInvalidRequest, "chat template " + impl_->name + ": line " +
                                                      std::to_string(positions.line(offset)) +
                                                      ": " + error.what());
  }
}

}  // namespace hfchain
