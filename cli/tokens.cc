// `hfchain tokens encode|count`: the token ids and counts of a prompt as its model counts them,
// so that a prompt can be checked against a limit by hand.
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "hfchain/chat_template.h"
#include "hfchain/token_counter.h"
#include "hfchain/tokenizer.h"

namespace hfchain::cli {
namespace {

constexpr const char* kUsage =
    "usage: hfchain tokens encode --tokenizer FILE [--no-special-tokens] [TEXT | -]\n"
    "       hfchain tokens count (--tokenizer FILE | --config FILE --target NAME)\n"
    "                            [--chat MESSAGES.json] [--chat-template FILE]\n"
    "                            [--no-special-tokens] [--limit N] [--json] [TEXT | -]\n";

struct Input {
  std::string text;
  std::vector<Message> messages;
};

std::optional<std::string> readFile(const std::string& path, std::string& error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = "cannot open " + path;
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(file), {});
}

// Reads a chat file: a list of messages in the OpenAI form, or an object with such a list
// under "messages" (an OpenAI chat request body), parsed as the gateway parses them.
std::optional<std::vector<Message>> readMessages(const std::string& path, std::string& error) {
  std::optional<std::string> text = path == "-"
                                        ? std::string(std::istreambuf_iterator<char>(std::cin), {})
                                        : readFile(path, error);
  if (!text) return std::nullopt;
  nlohmann::json body = nlohmann::json::parse(*text, nullptr, false);
  if (body.is_object() && body.contains("messages")) body = body["messages"];
  if (!body.is_array()) {
    error = path +
            " is not a JSON list of messages; write [{\"role\": \"user\", \"content\": \"...\"}]";
    return std::nullopt;
  }
  std::vector<Message> messages;
  if (Error parsed = parseChatMessages(body, messages); !parsed.ok()) {
    error = path + ": " + parsed.message;
    return std::nullopt;
  }
  return messages;
}

// Reads the TEXT word, or standard input for "-".
std::optional<std::string> readText(const std::vector<std::string>& words, std::string& error) {
  if (words.size() > 1) {
    error = "give the text as one word; quote it or pass - to read standard input";
    return std::nullopt;
  }
  if (words.empty() || words[0] == "-")
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  return words[0];
}

int usageError(std::ostream& err, const std::string& message) {
  err << "hfchain tokens: " << message << "\n" << kUsage;
  return kExitUsage;
}

TokenizerConstSharedPtr loadTokenizerOrReport(const std::string& path, std::ostream& err) {
  TokenizerLoadResult loaded = Tokenizer::load(path);
  if (!loaded.ok()) err << "hfchain tokens: " << loaded.error.message << "\n";
  return loaded.tokenizer;
}

int runEncode(Arguments& args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::optional<std::string> tokenizer_path = args.take("--tokenizer", error);
  bool no_special = args.flag("--no-special-tokens");
  if (!error.empty()) return usageError(err, error);
  if (auto unknown = args.unknownOption()) return usageError(err, *unknown);
  if (!tokenizer_path) return usageError(err, "encode needs --tokenizer FILE");
  std::optional<std::string> text = readText(args.rest(), error);
  if (!text) return usageError(err, error);
  TokenizerConstSharedPtr tokenizer = loadTokenizerOrReport(*tokenizer_path, err);
  if (!tokenizer) return kExitConfig;
  out << nlohmann::json(tokenizer->encode(*text, !no_special)).dump() << "\n";
  return kExitOk;
}

// Builds the counter of --tokenizer (with --chat-template) or of --config's --target.
Result<TokenCounterConstSharedPtr> counterFor(const std::optional<std::string>& tokenizer_path,
                                              const std::optional<std::string>& template_path,
                                              const std::optional<std::string>& config_path,
                                              const std::optional<std::string>& target_name) {
  if (tokenizer_path) {
    TargetConfig target;
    target.name = *tokenizer_path;
    target.tokenizer = *tokenizer_path;
    target.chat_template = template_path.value_or("");
    target.token_counter = TokenCounterKind::kTokenizer;
    return makeTokenCounter(target);
  }
  ParsedConfig parsed = loadConfig(*config_path);
  if (!parsed.ok()) return configError(parsed.issues);
  const TargetConfig* target =
      parsed.config.findTarget(target_name ? *target_name : parsed.config.default_target);
  if (target == nullptr) {
    return makeError(ErrorClass::kConfigRejected,
                     "target '" + target_name.value_or(parsed.config.default_target) +
                         "' is not in " + *config_path);
  }
  return makeTokenCounter(*target);
}

int runCount(Arguments& args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::optional<std::string> tokenizer_path = args.take("--tokenizer", error);
  std::optional<std::string> template_path = args.take("--chat-template", error);
  std::optional<std::string> config_path = args.take("--config", error);
  std::optional<std::string> target_name = args.take("--target", error);
  std::optional<std::string> chat_path = args.take("--chat", error);
  std::optional<std::string> limit_text = args.take("--limit", error);
  bool no_special = args.flag("--no-special-tokens");
  bool json = args.flag("--json");
  if (!error.empty()) return usageError(err, error);
  if (auto unknown = args.unknownOption()) return usageError(err, *unknown);
  if (tokenizer_path.has_value() == config_path.has_value()) {
    return usageError(err, "count needs either --tokenizer FILE or --config FILE");
  }
  if (template_path && !tokenizer_path) {
    return usageError(err,
                      "--chat-template goes with --tokenizer; a --config target names its own");
  }
  std::optional<int64_t> limit;
  if (limit_text) {
    try {
      size_t used = 0;
      limit = std::stoll(*limit_text, &used);
      if (used != limit_text->size() || *limit < 0) throw std::invalid_argument("limit");
    } catch (const std::exception&) {
      return usageError(err, "--limit is '" + *limit_text + "'; give a whole number of tokens");
    }
  }

  Request request;
  if (chat_path) {
    if (!args.rest().empty()) return usageError(err, "give either --chat MESSAGES.json or TEXT");
    auto messages = readMessages(*chat_path, error);
    if (!messages) {
      err << "hfchain tokens: " << error << "\n";
      return kExitUsage;
    }
    request.messages = std::move(*messages);
  } else {
    std::optional<std::string> text = readText(args.rest(), error);
    if (!text) return usageError(err, error);
    request.inputs = std::move(*text);
  }

  Result<TokenCounterConstSharedPtr> counter =
      counterFor(tokenizer_path, template_path, config_path, target_name);
  if (!counter.ok()) {
    err << "hfchain tokens: " << counter.error().message << "\n";
    return kExitConfig;
  }
  TokenCount count = request.isChat() || !no_special ? (*counter)->countRequest(request)
                                                     : (*counter)->countText(request.inputs);
  if (json) {
    nlohmann::json result = {{"tokens", count.tokens},
                             {"method", std::string(countMethodName(count.method))},
                             {"note", count.note}};
    if (limit) result["limit"] = *limit;
    out << result.dump() << "\n";
  } else {
    out << count.tokens << "\n";
    if (count.estimate()) {
      err << "hfchain tokens: the count is an estimate"
          << (count.note.empty() ? std::string() : ": " + count.note) << "\n";
    }
  }
  if (limit && count.tokens > *limit) {
    err << "hfchain tokens: " << count.tokens << " tokens exceed the limit of " << *limit << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

int runTokens(Arguments args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> words = args.rest();
  if (words.empty() || (words[0] != "encode" && words[0] != "count")) {
    err << kUsage;
    return kExitUsage;
  }
  std::string verb = words[0];
  words.erase(words.begin());
  Arguments rest(std::move(words));
  return verb == "encode" ? runEncode(rest, out, err) : runCount(rest, out, err);
}

}  // namespace hfchain::cli
