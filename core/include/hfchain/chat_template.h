// Chat templates: renders a model's `chat_template` (a Jinja template from
// tokenizer_config.json) into the prompt text the model sees, so that a chat request's input
// tokens can be counted before it is sent. The interpreter covers the subset of Jinja that
// Hugging Face chat templates use; docs/tokenizer.md lists it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hfchain/request.h"
#include "hfchain/result.h"

namespace hfchain {

class ChatTemplate;
using ChatTemplateConstSharedPtr = std::shared_ptr<const ChatTemplate>;

// The special tokens a template may refer to, from tokenizer_config.json.
struct ChatTemplateTokens {
  std::string bos_token;
  std::string eos_token;
  std::string pad_token;
  std::string unk_token;
};

// A parsed template. Thread-safe: render is const and keeps no state between calls.
class ChatTemplate {
 public:
  // Parses template source. Errors have class kConfigRejected and name `source_name`, the
  // line and column, and what is wrong.
  static Result<ChatTemplateConstSharedPtr> parse(std::string_view source, ChatTemplateTokens tokens,
                                                  std::string_view source_name);

  // Reads `chat_template` and the special tokens from a tokenizer_config.json. A template
  // given as a list of named templates uses the one called "default". Errors have class
  // kConfigRejected and name the file.
  static Result<ChatTemplateConstSharedPtr> fromTokenizerConfig(const std::filesystem::path& path);

  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  // Renders `messages` with the variables transformers passes: messages, bos_token,
  // eos_token, add_generation_prompt, plus tools = none. Errors have class kInvalidRequest:
  // a raise_exception call from the template (its message is kept), or a construct outside
  // the supported subset, named with its line.
  Result<std::string> render(const std::vector<Message>& messages,
                             bool add_generation_prompt) const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hfchain
