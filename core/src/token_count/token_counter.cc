// The token counters: the model's tokenizer with its chat template, TGI's /tokenize, and the
// estimate. Loaded tokenizer and template files are shared across chain snapshots.
#include "hfchain/token_counter.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "hfchain/chat_template.h"
#include "hfchain/log.h"
#include "hfchain/tokenizer.h"
#include "transport/connection_pool.h"
#include "transport/small_exchange.h"

namespace hfchain {
namespace {

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// The log prefix of a request id; look-ups outside a request have none.
std::string requestPrefix(const std::string& request_id) {
  return request_id.empty() ? std::string() : HFC_RID(request_id);
}

// Tokens of a chat request that has no chat template to render it: the message texts counted
// with the tokenizer plus the same markup allowance as the estimate.
constexpr int64_t kMarkupTokensPerMessage = 4;
constexpr int64_t kGenerationPromptTokens = 3;

// The bound of one /tokenize call; a request's own deadline shortens it.
constexpr int64_t kRemoteTimeoutMs = 2'000;

// `note_` gives the reason for the estimate, for targets that did not ask for one.
class EstimateCounter : public TokenCounter {
 public:
  explicit EstimateCounter(std::string note) : note_(std::move(note)) {}
  TokenCount countRequest(const Request& request) const override {
    return TokenCount{estimateRequestTokens(request), CountMethod::kEstimate, note_};
  }
  TokenCount countText(std::string_view text) const override {
    return TokenCount{estimateTextTokens(text), CountMethod::kEstimate, note_};
  }

 private:
  std::string note_;
};

// Identifies a file's content well enough to reuse what was loaded from it.
struct FileStamp {
  std::string path;
  int64_t size = -1;
  int64_t mtime_ns = -1;
  auto operator<=>(const FileStamp&) const = default;
};

FileStamp stampOf(const std::string& path) {
  FileStamp stamp{path};
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    stamp.size = static_cast<int64_t>(info.st_size);
    stamp.mtime_ns =
        static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  }
  return stamp;
}

// Loaded files by stamp. Entries are weak, so a file no snapshot uses any more is freed.
template <typename T>
class FileCache {
 public:
  template <typename Load>
  Result<std::shared_ptr<const T>> get(const std::string& path, Load load) {
    FileStamp stamp = stampOf(path);
    {
      std::lock_guard lock(mutex_);
      auto found = entries_.find(stamp);
      if (found != entries_.end()) {
        if (auto alive = found->second.lock()) return alive;
      }
    }
    // Loading takes up to a second for a large vocabulary, so it runs unlocked. Two
    // snapshots that load the same new file at once both load it, and the later one is kept.
    Result<std::shared_ptr<const T>> loaded = load(path);
    if (!loaded) return loaded;
    std::lock_guard lock(mutex_);
    std::erase_if(entries_, [](const auto& entry) { return entry.second.expired(); });
    entries_[stamp] = *loaded;
    return loaded;
  }

 private:
  std::mutex mutex_;
  std::map<FileStamp, std::weak_ptr<const T>> entries_;
};

Result<TokenizerConstSharedPtr> loadTokenizer(const std::string& path) {
  static FileCache<Tokenizer> cache;
  return cache.get(path, [](const std::string& file) -> Result<TokenizerConstSharedPtr> {
    TokenizerLoadResult result = Tokenizer::load(file);
    if (!result.ok()) return result.error;
    return result.tokenizer;
  });
}

Result<ChatTemplateConstSharedPtr> loadChatTemplate(const std::string& path) {
  static FileCache<ChatTemplate> cache;
  return cache.get(path,
                   [](const std::string& file) { return ChatTemplate::fromTokenizerConfig(file); });
}

class TokenizerCounter : public TokenCounter {
 public:
  // `template_problem` is the reason a chat cannot be rendered when `chat_template` is null.
  TokenizerCounter(TokenizerConstSharedPtr tokenizer, ChatTemplateConstSharedPtr chat_template,
                   std::string template_problem)
      : tokenizer_(std::move(tokenizer)),
        chat_template_(std::move(chat_template)),
        template_problem_(std::move(template_problem)) {}

  TokenCount countRequest(const Request& request) const override {
    if (!request.isChat()) {
      return TokenCount{static_cast<int64_t>(tokenizer_->count(request.inputs, true)),
                        CountMethod::kTokenizer, ""};
    }
    if (!chat_template_) {
      return countWithoutTemplate(request, template_problem_ +
                                               "; message texts counted with the tokenizer "
                                               "plus an allowance for markup");
    }
    Result<std::string> prompt = chat_template_->render(request.messages, true);
    if (!prompt) {
      return countWithoutTemplate(request, "the chat template failed: " + prompt.error().message);
    }
    // The rendered prompt carries its own BOS and turn markers, so no special tokens are
    // added, as transformers' apply_chat_template does.
    return TokenCount{static_cast<int64_t>(tokenizer_->count(*prompt, false)),
                      CountMethod::kTokenizer, ""};
  }

  TokenCount countText(std::string_view text) const override {
    return TokenCount{static_cast<int64_t>(tokenizer_->count(text, false)), CountMethod::kTokenizer,
                      ""};
  }

 private:
  TokenCount countWithoutTemplate(const Request& request, std::string note) const {
    int64_t total = kGenerationPromptTokens;
    for (const Message& message : request.messages) {
      total +=
          kMarkupTokensPerMessage + static_cast<int64_t>(tokenizer_->count(message.content, false));
    }
    return TokenCount{total, CountMethod::kEstimate, std::move(note)};
  }

  TokenizerConstSharedPtr tokenizer_;
  ChatTemplateConstSharedPtr chat_template_;
  std::string template_problem_;
};

// Counts with TGI's POST /tokenize (raw inputs and text) and POST /chat_tokenize (chats),
// which return one entry per token. A failed call gives the estimate, with the reason.
class RemoteCounter : public TokenCounter {
 public:
  RemoteCounter(TargetConfig target, transport::Endpoint endpoint, Poco::Net::Context::Ptr tls)
      : target_(std::move(target)), endpoint_(std::move(endpoint)), tls_(std::move(tls)) {}

  TokenCount countRequest(const Request& request) const override {
    if (!request.isChat()) {
      return call("/tokenize", nlohmann::json{{"inputs", request.inputs}}, request,
                  estimateRequestTokens(request));
    }
    nlohmann::json messages = nlohmann::json::array();
    for (const Message& message : request.messages) {
      messages.push_back({{"role", message.role}, {"content", message.content}});
    }
    nlohmann::json body = {{"model", request.model.empty() ? target_.model : request.model},
                           {"messages", std::move(messages)}};
    return call("/chat_tokenize", body, request, estimateRequestTokens(request));
  }

  TokenCount countText(std::string_view text) const override {
    // TGI's /tokenize encodes text as a prompt, with the tokenizer's special tokens, which
    // plain output text must not count. Output text is therefore estimated locally, which
    // also saves a call per event.
    return TokenCount{estimateTextTokens(text), CountMethod::kEstimate,
                      "TGI /tokenize adds special tokens, so text is estimated"};
  }

 private:
  TokenCount call(const std::string& route, const nlohmann::json& body, const Request& request,
                  int64_t estimate) const {
    transport::SmallRequest http;
    http.method = "POST";
    http.path = endpoint_.base_path + route;
    http.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!target_.token.empty()) http.authorization = "Bearer " + target_.token.value;
    http.timeout_ms = kRemoteTimeoutMs;
    if (request.deadline) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*request.deadline - Clock::now())
              .count();
      http.timeout_ms = std::clamp<int64_t>(left, 1, kRemoteTimeoutMs);
    }
    http.max_body_bytes = 64 * 1024 * 1024;
    auto result = transport::exchangeSmall(endpoint_, tls_, http);
    std::string failure;
    if (!result) {
      failure = result.error().message;
    } else if (result->status != 200) {
      failure = endpoint_.origin() + http.path + " returned HTTP " + std::to_string(result->status);
    } else {
      auto parsed = nlohmann::json::parse(result->body, nullptr, false);
      if (parsed.is_array())
        return TokenCount{static_cast<int64_t>(parsed.size()), CountMethod::kRemote, ""};
      if (parsed.is_object() && parsed.contains("tokenize_response") &&
          parsed["tokenize_response"].is_array()) {
        return TokenCount{static_cast<int64_t>(parsed["tokenize_response"].size()),
                          CountMethod::kRemote, ""};
      }
      failure = endpoint_.origin() + http.path + " did not return a list of tokens";
    }
    HFC_LOG_WARNING(log::get("hfchain.tokens"),
                    requestPrefix(request.id) + "counting with " + route + " of target " +
                        inQuotes(target_.name) +
                        " failed, so the count is an estimate: " + failure);
    return TokenCount{estimate, CountMethod::kEstimate, route + " failed: " + failure};
  }

  TargetConfig target_;
  transport::Endpoint endpoint_;
  Poco::Net::Context::Ptr tls_;
};

// Returns false for a readable tokenizer_config.json without a "chat_template" key; other
// files go on to the template loader, which reports what is wrong with them.
bool hasChatTemplate(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return true;
  nlohmann::json config = nlohmann::json::parse(file, nullptr, false);
  return !config.is_object() ||
         (config.contains("chat_template") && !config["chat_template"].is_null());
}

Result<TokenCounterConstSharedPtr> makeTokenizerCounter(const TargetConfig& target) {
  auto tokenizer = loadTokenizer(target.tokenizer);
  if (!tokenizer) {
    Error error = tokenizer.error();
    error.message = "target " + inQuotes(target.name) + " tokenizer: " + error.message;
    return error;
  }
  std::string template_path = target.chat_template;
  if (template_path.empty()) {
    std::filesystem::path beside =
        std::filesystem::path(target.tokenizer).parent_path() / "tokenizer_config.json";
    std::error_code ignored;
    if (std::filesystem::exists(beside, ignored)) template_path = beside.string();
  }
  // Base models ship no chat template, and a template may use Jinja beyond the supported
  // subset. Neither stops raw prompts from being counted exactly, so the target keeps its
  // tokenizer and only chats get the estimate, with the reason in their note.
  std::string problem = "target " + inQuotes(target.name) + " has no chat template";
  ChatTemplateConstSharedPtr chat_template;
  if (!template_path.empty() && hasChatTemplate(template_path)) {
    auto loaded = loadChatTemplate(template_path);
    if (loaded) {
      chat_template = *loaded;
    } else {
      problem = "the chat template of target " + inQuotes(target.name) +
                " cannot be used: " + loaded.error().message;
      HFC_LOG_WARNING(log::get("hfchain.tokens"),
                      problem + "; chat requests will get an estimate of their tokens");
    }
  }
  return TokenCounterConstSharedPtr(
      std::make_shared<TokenizerCounter>(*tokenizer, std::move(chat_template), std::move(problem)));
}

}  // namespace

std::string_view countMethodName(CountMethod method) {
  switch (method) {
    case CountMethod::kTokenizer:
      return "tokenizer";
    case CountMethod::kRemote:
      return "remote";
    case CountMethod::kEstimate:
      return "estimate";
  }
  return "estimate";
}

TokenCounterConstSharedPtr estimateTokenCounter() {
  static const TokenCounterConstSharedPtr counter = std::make_shared<EstimateCounter>("");
  return counter;
}

Result<TokenCounterConstSharedPtr> makeTokenCounter(const TargetConfig& target) {
  switch (target.token_counter) {
    case TokenCounterKind::kEstimate:
      return estimateTokenCounter();
    case TokenCounterKind::kRemote: {
      auto endpoint = transport::parseEndpoint(target.base_url,
                                               "target " + inQuotes(target.name) + " base_url");
      if (!endpoint) return endpoint.error();
      Poco::Net::Context::Ptr tls;
      if (endpoint->tls) {
        auto context = transport::makeClientTlsContext(target.tls_verify, target.ca_file,
                                                       "target " + inQuotes(target.name));
        if (!context) return context.error();
        tls = *context;
      }
      return TokenCounterConstSharedPtr(std::make_shared<RemoteCounter>(target, *endpoint, tls));
    }
    case TokenCounterKind::kTokenizer:
    case TokenCounterKind::kAuto:
      if (target.tokenizer.empty()) {
        return TokenCounterConstSharedPtr(
            std::make_shared<EstimateCounter>("target " + inQuotes(target.name) +
                                              " has no tokenizer; set tokenizer for exact counts"));
      }
      return makeTokenizerCounter(target);
  }
  return estimateTokenCounter();
}

}  // namespace hfchain
