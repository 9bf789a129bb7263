// The local-responder link: answers from regex rules on the last user message, with a
// template that can use the captures, and a default answer. It can answer every request
// itself, or stand before the rest of the chain as the last resort when that fails.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <vector>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::local_responder {
namespace {

namespace sdk = hfchain::sdk;

constexpr const char* kServedBy = "local-responder";

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};

struct Rule {
  std::string pattern;
  std::unique_ptr<pcre2_code, CodeDeleter> code;
  std::string answer;
};

enum class Mode {
  kAnswer,    // always answer locally; never call the rest of the chain
  kRules,     // answer when a rule matches, otherwise pass the request on
  kFallback,  // pass the request on; answer locally when it fails before its first token
};

// Fills "{1}", "{name}", "{input}", "{error}" and "{error_class}" in a template. "{{" and "}}"
// stand for literal braces; an unknown name is left as written.
std::string render(const std::string& answer,
                   const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  for (size_t i = 0; i < answer.size(); ++i) {
    char c = answer[i];
    if (c == '{' && i + 1 < answer.size() && answer[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    if (c == '}' && i + 1 < answer.size() && answer[i + 1] == '}') {
      out += '}';
      ++i;
      continue;
    }
    if (c == '{') {
      size_t close = answer.find('}', i);
      if (close != std::string::npos) {
        std::string name = answer.substr(i + 1, close - i - 1);
        bool found = false;
        for (const auto& [key, value] : values) {
          if (key == name) {
            out += value;
            found = true;
            break;
          }
        }
        if (found) {
          i = close;
          continue;
        }
      }
    }
    out += c;
  }
  return out;
}

class LocalResponderLink : public sdk::Link {
 public:
  static std::unique_ptr<LocalResponderLink> create(const nlohmann::json& settings,
                                                    std::string& error) {
    for (const auto& [key, value] : settings.items()) {
      if (key != "mode" && key != "rules" && key != "default") {
        error = "unknown setting '" + key + "'; expected mode, rules or default";
        return nullptr;
      }
    }
    auto link = std::make_unique<LocalResponderLink>();
    std::string mode = settings.value("mode", std::string("answer"));
    if (mode == "answer") {
      link->mode_ = Mode::kAnswer;
    } else if (mode == "rules") {
      link->mode_ = Mode::kRules;
    } else if (mode == "fallback") {
      link->mode_ = Mode::kFallback;
    } else {
      error = "mode is '" + mode + "'; expected answer, rules or fallback";
      return nullptr;
    }
    if (settings.contains("default")) {
      if (!settings["default"].is_string()) {
        error = "default must be a string template";
        return nullptr;
      }
      link->default_ = settings["default"].get<std::string>();
      link->has_default_ = true;
    }
    if (settings.contains("rules")) {
      const nlohmann::json& rules = settings["rules"];
      if (!rules.is_array()) {
        error = "rules must be a list of {match, answer}";
        return nullptr;
      }
      for (size_t i = 0; i < rules.size(); ++i) {
        const nlohmann::json& rule = rules[i];
        std::string where = "rules[" + std::to_string(i) + "]";
        if (!rule.is_object() || !rule.contains("match") || !rule["match"].is_string() ||
            !rule.contains("answer") || !rule["answer"].is_string()) {
          error = where + " must have a string match (a regex) and a string answer";
          return nullptr;
        }
        Rule compiled;
        compiled.pattern = rule["match"].get<std::string>();
        compiled.answer = rule["answer"].get<std::string>();
        int code = 0;
        PCRE2_SIZE offset = 0;
        compiled.code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.pattern.data()),
                                          compiled.pattern.size(), PCRE2_UTF | PCRE2_UCP, &code,
                                          &offset, nullptr));
        if (!compiled.code) {
          PCRE2_UCHAR message[256];
          pcre2_get_error_message(code, message, sizeof(message));
          error = where + ".match '" + compiled.pattern +
                  "' is not a valid regex: " + reinterpret_cast<const char*>(message) +
                  " at offset " + std::to_string(offset);
          return nullptr;
        }
        link->rules_.push_back(std::move(compiled));
      }
    }
    if (link->mode_ == Mode::kAnswer && !link->has_default_ && link->rules_.empty()) {
      error = "mode answer needs rules or a default answer";
      return nullptr;
    }
    return link;
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    std::string input(request.lastUserText());
    if (mode_ != Mode::kFallback) {
      if (auto answer = matchRules(input)) return respond(*answer, "a rule matched");
      if (mode_ == Mode::kAnswer) {
        return respond(render(default_, {{"input", input}}), "default answer");
      }
      return next(request);
    }
    sdk::Response response = next(request);
    if (auto failure = response.error()) return answerFailure(request, input, *failure);
    // The upstream may also fail in its first event; only then is it still safe to answer
    // here, because nothing has reached the caller yet.
    sdk::Response inner = sdk::takeStream(response);
    auto first = std::make_unique<sdk::Event>(sdk::Event::make());
    bool has_first = inner.next(*first);
    if (has_first && first->isError()) {
      sdk::ErrorInfo failure;
      failure.error_class = first->errorClass();
      failure.message = std::string(first->errorMessage());
      failure.http_status = static_cast<int>(first->getInt(HFC_EVENT_ERROR_HTTP_STATUS));
      return answerFailure(request, input, failure);
    }
    return sdk::wrap(std::move(response),
                     std::make_unique<ReplayFirst>(std::move(inner), std::move(first), has_first));
  }

 private:
  // Delivers the event already read, then the rest of the inner stream.
  class ReplayFirst : public sdk::Stream {
   public:
    ReplayFirst(sdk::Response inner, std::unique_ptr<sdk::Event> first, bool has_first)
        : inner_(std::move(inner)), first_(std::move(first)), pending_(has_first) {}
    bool next(sdk::Event& out) override {
      if (pending_) {
        pending_ = false;
        out.copyFrom(*first_);
        return true;
      }
      return inner_.next(out);
    }

   private:
    sdk::Response inner_;
    std::unique_ptr<sdk::Event> first_;
    bool pending_;
  };

  std::optional<std::string> matchRules(const std::string& input) const {
    for (const Rule& rule : rules_) {
      std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> match(
          pcre2_match_data_create_from_pattern(rule.code.get(), nullptr), &pcre2_match_data_free);
      int count = pcre2_match(rule.code.get(), reinterpret_cast<PCRE2_SPTR>(input.data()),
                              input.size(), 0, 0, match.get(), nullptr);
      if (count < 0) continue;
      std::vector<std::pair<std::string, std::string>> values;
      PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      for (int i = 0; i < count; ++i) {
        std::string text;
        if (ovector[2 * i] != PCRE2_UNSET) {
          text = input.substr(ovector[2 * i], ovector[2 * i + 1] - ovector[2 * i]);
        }
        values.emplace_back(std::to_string(i), std::move(text));
      }
      addNamedGroups(rule, input, ovector, count, values);
      values.emplace_back("input", input);
      return render(rule.answer, values);
    }
    return std::nullopt;
  }

  static void addNamedGroups(const Rule& rule, const std::string& input, const PCRE2_SIZE* ovector,
                             int count, std::vector<std::pair<std::string, std::string>>& values) {
    uint32_t name_count = 0;
    uint32_t entry_size = 0;
    PCRE2_SPTR table = nullptr;
    pcre2_pattern_info(rule.code.get(), PCRE2_INFO_NAMECOUNT, &name_count);
    pcre2_pattern_info(rule.code.get(), PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(rule.code.get(), PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < name_count; ++i) {
      PCRE2_SPTR entry = table + i * entry_size;
      int group = (entry[0] << 8) | entry[1];
      std::string name(reinterpret_cast<const char*>(entry + 2));
      std::string text;
      if (group < count && ovector[2 * group] != PCRE2_UNSET) {
        text = input.substr(ovector[2 * group], ovector[2 * group + 1] - ovector[2 * group]);
      }
      values.emplace_back(std::move(name), std::move(text));
    }
  }

  sdk::Response answerFailure(sdk::Request& request, const std::string& input,
                              const sdk::ErrorInfo& failure) {
    std::string class_name = sdk::errorClassName(failure.error_class);
    if (auto answer = matchRules(input)) {
      request.log(HFC_LOG_WARNING, "local-responder",
                  "the chain failed (" + class_name + ": " + failure.message +
                      "); answering from a local rule");
      return respond(*answer, "upstream failed (" + class_name + "), a rule matched");
    }
    if (!has_default_) return sdk::Response::error(failure);
    request.log(HFC_LOG_WARNING, "local-responder",
                "the chain failed (" + class_name + ": " + failure.message +
                    "); answering with the default answer");
    std::string answer = render(
        default_, {{"input", input}, {"error", failure.message}, {"error_class", class_name}});
    return respond(answer, "upstream failed (" + class_name + "), default answer");
  }

  static sdk::Response respond(const std::string& text, const std::string& reason) {
    auto stream = std::make_unique<TextStream>(text);
    sdk::Response response = sdk::respond(std::move(stream));
    response.setHeader("x-hfchain-served-by", kServedBy);
    response.setHeader("x-hfchain-local-reason", reason);
    return response;
  }

  // One token with the whole answer, then the finish event.
  class TextStream : public sdk::Stream {
   public:
    explicit TextStream(std::string text) : text_(std::move(text)) {}
    bool next(sdk::Event& out) override {
      if (step_ == 0) {
        out.setKind(HFC_EVENT_TOKEN);
        out.setText(text_);
      } else if (step_ == 1) {
        out.setKind(HFC_EVENT_FINISH);
        out.setFinishReason("stop");
        out.setGeneratedText(text_);
      } else {
        return false;
      }
      out.set(HFC_EVENT_SERVED_BY, kServedBy);
      ++step_;
      return true;
    }

   private:
    std::string text_;
    int step_ = 0;
  };

  Mode mode_ = Mode::kAnswer;
  std::vector<Rule> rules_;
  std::string default_;
  bool has_default_ = false;
};

}  // namespace
}  // namespace hfchain::plugins::local_responder

HFCHAIN_PLUGIN("local-responder", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::local_responder::LocalResponderLink,
                            "local-responder",
                            "answers from regex rules and templates, alone or as the last resort"))
