// Checks hfchain::ChatTemplate against prompts rendered by @huggingface/jinja (see
// scripts/chat-template-vectors/) from the Llama 3, Qwen 3 and Gemma 3 chat templates and
// from feature snippets, and its errors and limits.
#include "hfchain/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kDataDir = HFCHAIN_TEST_DATA_DIR;
const fs::path kCacheDir = HFCHAIN_TOKENIZER_CACHE_DIR;
const fs::path kVectorDir = kDataDir / "chat_template_vectors";
const char* const kTemplateNames[] = {"llama3", "qwen3", "gemma3"};

json readJson(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return json::parse(contents.str());
}

std::vector<Message> toMessages(const json& items) {
  std::vector<Message> messages;
  for (const json& item : items) {
    messages.push_back(
        Message{item["role"].get<std::string>(), item["content"].get<std::string>()});
  }
  return messages;
}

// Parses a snippet with the snippet file's tokens; fails the test on a parse error.
ChatTemplateConstSharedPtr parseOrFail(const std::string& source) {
  auto parsed = ChatTemplate::parse(source, ChatTemplateTokens{"<s>", "</s>", "", ""}, "snippet");
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  return parsed.ok() ? parsed.value() : nullptr;
}

// Renders a snippet with one user message; returns the output or "error: <message>".
std::string renderSnippet(const std::string& source,
                          std::vector<Message> messages = {Message{"user", "hi"}}) {
  auto parsed = ChatTemplate::parse(source, ChatTemplateTokens{"<s>", "</s>", "", ""}, "snippet");
  if (!parsed.ok()) return "parse error: " + parsed.error().message;
  auto rendered = parsed.value()->render(messages, false);
  if (!rendered.ok()) return "error: " + rendered.error().message;
  return rendered.value();
}

class ChatTemplateVectorsTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fs::path config = kCacheDir / GetParam() / "tokenizer_config.json";
    if (!fs::exists(config)) {
      GTEST_SKIP() << "tokenizer_config.json missing in " << (kCacheDir / GetParam()).string()
                   << "; run scripts/fetch-tokenizers.sh first";
    }
    auto loaded = ChatTemplate::fromTokenizerConfig(config);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    template_ = loaded.value();
    vectors_ = readJson(kVectorDir / (std::string(GetParam()) + ".json"));
  }

  ChatTemplateConstSharedPtr template_;
  json vectors_;
};

TEST_P(ChatTemplateVectorsTest, RendersLikeReference) {
  ASSERT_FALSE(vectors_["cases"].empty());
  for (const json& item : vectors_["cases"]) {
    SCOPED_TRACE(item["name"].get<std::string>());
    auto rendered =
        template_->render(toMessages(item["messages"]), item["add_generation_prompt"].get<bool>());
    if (item.contains("error")) {
      ASSERT_FALSE(rendered.ok()) << "rendered: " << json(rendered.value()).dump();
      EXPECT_EQ(rendered.error().cls, ErrorClass::kInvalidRequest);
      EXPECT_NE(rendered.error().message.find(item["error"].get<std::string>()), std::string::npos)
          << rendered.error().message;
      continue;
    }
    ASSERT_TRUE(rendered.ok()) << rendered.error().message;
    EXPECT_EQ(rendered.value(), item["expected"].get<std::string>());
  }
}

TEST_P(ChatTemplateVectorsTest, RendersConcurrently) {
  const json& item = vectors_["cases"][2];
  std::vector<Message> messages = toMessages(item["messages"]);
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      auto rendered = template_->render(messages, item["add_generation_prompt"].get<bool>());
      result = rendered.ok() ? rendered.value() : rendered.error().message;
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, item["expected"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(ChatTemplateShipped, ChatTemplateVectorsTest,
                         ::testing::ValuesIn(kTemplateNames),
                         [](const auto& info) { return std::string(info.param); });

TEST(ChatTemplateSnippets, RenderLikeReference) {
  json snippets = readJson(kVectorDir / "snippets.json");
  std::vector<Message> messages = toMessages(snippets["messages"]);
  ChatTemplateTokens tokens{snippets["bos_token"].get<std::string>(),
                            snippets["eos_token"].get<std::string>(), "", ""};
  ASSERT_GT(snippets["cases"].size(), 50u);
  for (const json& item : snippets["cases"]) {
    std::string name = item["name"].get<std::string>();
    SCOPED_TRACE(name + ": " + item["template"].get<std::string>());
    auto parsed = ChatTemplate::parse(item["template"].get<std::string>(), tokens, name);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    auto rendered = parsed.value()->render(messages, snippets["add_generation_prompt"].get<bool>());
    if (item.contains("error")) {
      ASSERT_FALSE(rendered.ok());
      EXPECT_EQ(rendered.error().message, item["error"].get<std::string>());
      continue;
    }
    ASSERT_TRUE(rendered.ok()) << rendered.error().message;
    EXPECT_EQ(rendered.value(), item["expected"].get<std::string>());
  }
}

TEST(ChatTemplateParse, NamesLineAndColumn) {
  auto parsed = ChatTemplate::parse("line one\n  {{ 1 + }}", {}, "broken.jinja");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().cls, ErrorClass::kConfigRejected);
  EXPECT_EQ(parsed.error().message,
            "chat template broken.jinja: line 2, column 10: expected an expression, found '}}'");
}

TEST(ChatTemplateParse, RejectsUnknownFilter) {
  auto parsed = ChatTemplate::parse("{{ x | frobnicate }}", {}, "t");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "chat template t: line 1, column 8: unknown filter 'frobnicate'");
}

TEST(ChatTemplateParse, RejectsUnknownTest) {
  auto parsed = ChatTemplate::parse("{{ x is purple }}", {}, "t");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, "chat template t: line 1, column 9: unknown test 'purple'");
}

TEST(ChatTemplateParse, RejectsUnsupportedStatement) {
  auto parsed = ChatTemplate::parse("a\n{% include 'other.jinja' %}", {}, "t");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "chat template t: line 2, column 1: unsupported statement 'include'");
}

TEST(ChatTemplateParse, RejectsUnclosedBlock) {
  auto parsed = ChatTemplate::parse("{% if true %}x", {}, "t");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("unexpected end of template, expected {% elif %}"),
            std::string::npos)
      << parsed.error().message;
}

TEST(ChatTemplateParse, RejectsUnclosedTagAndString) {
  auto unclosed_tag = ChatTemplate::parse("ab {{ x ", {}, "t");
  ASSERT_FALSE(unclosed_tag.ok());
  EXPECT_EQ(unclosed_tag.error().message,
            "chat template t: line 1, column 4: unclosed output tag, expected }}");
  auto unclosed_string = ChatTemplate::parse("{{ 'abc }}", {}, "t");
  ASSERT_FALSE(unclosed_string.ok());
  EXPECT_EQ(unclosed_string.error().message,
            "chat template t: line 1, column 4: unterminated string literal");
}

TEST(ChatTemplateParse, LimitsNesting) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  auto parsed = ChatTemplate::parse(deep, {}, "t");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("nested deeper than 200 levels"), std::string::npos)
      << parsed.error().message;
}

TEST(ChatTemplateRender, KeepsRaiseExceptionMessage) {
  auto parsed =
      parseOrFail("{{ raise_exception('Roles must alternate, got ' ~ messages[0].role) }}");
  auto rendered = parsed->render({Message{"tool", "x"}}, false);
  ASSERT_FALSE(rendered.ok());
  EXPECT_EQ(rendered.error().cls, ErrorClass::kInvalidRequest);
  EXPECT_EQ(rendered.error().message, "Roles must alternate, got tool");
}

TEST(ChatTemplateRender, BoundsLoopIterations) {
  auto parsed = parseOrFail(
      "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}"
      "{% endfor %}{% endfor %}{% endfor %}");
  auto rendered = parsed->render({}, false);
  ASSERT_FALSE(rendered.ok());
  EXPECT_EQ(rendered.error().cls, ErrorClass::kInvalidRequest);
  EXPECT_NE(rendered.error().message.find("loop iteration limit (1000000) exceeded"),
            std::string::npos)
      << rendered.error().message;
}

TEST(ChatTemplateRender, BoundsRange) {
  EXPECT_EQ(renderSnippet("{{ range(5000000) | length }}"),
            "error: chat template snippet: line 1: loop iteration limit (1000000) exceeded");
}

TEST(ChatTemplateRender, BoundsMacroRecursion) {
  std::string result = renderSnippet("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(result.find("macro call depth limit (64) exceeded"), std::string::npos) << result;
}

TEST(ChatTemplateRender, BoundsStringGrowth) {
  std::string result = renderSnippet(
      "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}{{ ns.s | length }}");
  EXPECT_NE(result.find("string size limit (67108864) exceeded"), std::string::npos) << result;
}

TEST(ChatTemplateRender, UndefinedRendersEmpty) {
  EXPECT_EQ(renderSnippet("[{{ missing }}][{{ missing.a.b }}][{{ missing['k'] }}]"), "[][][]");
  EXPECT_EQ(renderSnippet("{{ missing is defined }} {{ missing | length }}"), "false 0");
  EXPECT_EQ(renderSnippet("{% for x in missing %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(renderSnippet("{{ missing | default('fallback') }}"), "fallback");
  EXPECT_EQ(renderSnippet("[{{ enable_thinking }}]{{ enable_thinking is defined }}"), "[]false");
}

TEST(ChatTemplateRender, ReportsUndefinedCall) {
  EXPECT_EQ(renderSnippet("a\n{{ nope(1) }}"),
            "error: chat template snippet: line 2: 'nope' is undefined and cannot be called");
}

TEST(ChatTemplateRender, ReportsTypeErrorsWithLine) {
  EXPECT_EQ(renderSnippet("\n\n{{ 'a' + 1 }}"),
            "error: chat template snippet: line 3: unsupported operand types for +: str and int");
  EXPECT_EQ(renderSnippet("{{ 1 // 0 }}"),
            "error: chat template snippet: line 1: division by zero");
  EXPECT_EQ(renderSnippet("{% set x = 1 %}{% set x.y = 2 %}"),
            "error: chat template snippet: line 1: cannot set attribute 'y' on 'x', which is not a "
            "namespace");
}

TEST(ChatTemplateRender, PassesTransformersVariables) {
  auto parsed = ChatTemplate::parse(
      "{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|{{ unk_token is defined }}|"
      "{{ add_generation_prompt }}|{{ tools is none }}|{{ messages | length }}",
      ChatTemplateTokens{"<bos>", "<eos>", "<pad>", ""}, "t");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  auto rendered = parsed.value()->render({Message{"user", "a"}, Message{"assistant", "b"}}, true);
  ASSERT_TRUE(rendered.ok()) << rendered.error().message;
  EXPECT_EQ(rendered.value(), "<bos>|<eos>|<pad>|false|true|true|2");
}

// Features the reference cannot render, checked against Python Jinja 3.1 behaviour.
TEST(ChatTemplateRender, MatchesJinjaBeyondReference) {
  EXPECT_EQ(renderSnippet("x\n    {%+ if true %}y{% endif %}"), "x\n    y");
  EXPECT_EQ(renderSnippet("{{ 6 is divisibleby 3 }} {{ 6 is divisibleby(4) }}"), "true false");
  EXPECT_EQ(renderSnippet("{{ 1 is equalto 1 }} {{ 1 is equalto(2) }}"), "true false");
  EXPECT_EQ(renderSnippet("{{ [1, 2, 3, 4] | select('even') | list }}"), "[2, 4]");
  EXPECT_EQ(renderSnippet("{{ [1, 2, 3, 4] | reject('odd') | list }}"), "[2, 4]");
  EXPECT_EQ(renderSnippet("{{ [1, 0, 2] | select | list }}"), "[1, 2]");
  EXPECT_EQ(renderSnippet("{{ 'abc' | count }} {{ [1, 2] | count }}"), "3 2");
  EXPECT_EQ(renderSnippet("{{ 'xxaxx'.lstrip('x') }} {{ 'xxaxx'.rstrip('x') }}"), "axx xxa");
  EXPECT_EQ(renderSnippet("{{ 'xax' | trim('x') }}"), "a");
  EXPECT_EQ(
      renderSnippet("{{ 2.567 | round(1) }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 3 | round }}"),
      "2.6 2.0 4.0 3");
  EXPECT_EQ(renderSnippet("{{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }}"),
            "3.0 2.0");
  EXPECT_EQ(renderSnippet("{{ ['a', 'A', 'b'] | unique | list }}"), "[\"a\", \"b\"]");
  EXPECT_EQ(renderSnippet("{{ 'abc' | list }} {{ {'a': 1, 'b': 2} | list }}"),
            "[\"a\", \"b\", \"c\"] [\"a\", \"b\"]");
  EXPECT_EQ(renderSnippet("{{ ['a', 'b'] | map('upper') | list }}"), "[\"A\", \"B\"]");
  EXPECT_EQ(renderSnippet("{{ 'hello wORLD-foo'.title() }} {{ 'hELLO' | capitalize }}"),
            "Hello World-Foo Hello");
  EXPECT_EQ(renderSnippet("{{ 'straße' | upper }}"), "STRASSE");
  EXPECT_EQ(renderSnippet("{{ 'a' < 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}"), "true true false");
  EXPECT_EQ(renderSnippet("{{ [1] == [1] }} {{ {'a': 1} == {'a': 1} }}"), "true true");
  EXPECT_EQ(renderSnippet("{{ [1.0, 2.5] | tojson }}"), "[1.0, 2.5]");
  EXPECT_EQ(renderSnippet("{{ {} is iterable }} {{ 'x' ~ 2 * 3 }} {{ 'ab' * 2 }}"), "true x6 abab");
  EXPECT_EQ(renderSnippet("{{ 1e3 }} {{ 1e16 }} {{ 0.00001 }} {{ 123456789.125 }}"),
            "1000.0 1e+16 1e-05 123456789.125");
  EXPECT_EQ(renderSnippet("{{ 'a\\u00e9\\x41' }}"), "aéA");
  EXPECT_EQ(renderSnippet("{% raw %}{{ not rendered }}{% endraw %}"), "{{ not rendered }}");
  EXPECT_EQ(renderSnippet("{% filter upper %}abc{% endfilter %}"), "ABC");
  EXPECT_EQ(renderSnippet("{{ {'b': 1, 'a': 2} | dictsort }}"), "[[\"a\", 2], [\"b\", 1]]");
  EXPECT_EQ(renderSnippet("{{ 'a\\nb' | indent(2, blank=true, first=true) }}"), "  a\n  b");
  EXPECT_EQ(renderSnippet("{{ -3 // 2 }} {{ -3 % 2 }} {{ 7.5 % 2 }} {{ -7.5 // 2 }}"),
            "-2 1 1.5 -4.0");
}

TEST(ChatTemplateRender, HandlesUnicodeByCodePoint) {
  EXPECT_EQ(renderSnippet("{{ '中文😀'[1] }} {{ '中文😀' | length }} {{ 'héllo'[::-1] }}"),
            "文 3 olléh");
  EXPECT_EQ(renderSnippet("[{{ '\\u3000 x \\u00a0'.strip() }}] {{ 'a\\u2028b'.split() }}"),
            "[x] [\"a\", \"b\"]");
}

TEST(ChatTemplateRender, StrftimeNowFormatsLocalTime) {
  std::string year = renderSnippet("{{ strftime_now('%Y') }}");
  ASSERT_EQ(year.size(), 4u) << year;
  EXPECT_GE(std::stoi(year), 2024);
}

TEST(ChatTemplateRender, MacroSeesGlobalsNotCallerLocals) {
  EXPECT_EQ(renderSnippet("{% macro show() %}{{ bos_token }}[{{ item }}]{% endmacro %}"
                          "{% for item in [1] %}{{ show() }}{% endfor %}"),
            "<s>[]");
}

TEST(ChatTemplateLoad, ReadsNamedDefaultTemplate) {
  fs::path path = fs::temp_directory_path() / "hfchain_chat_template_named.json";
  {
    std::ofstream out(path);
    out << R"({"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "<E>",
               "chat_template": [{"name": "tool_use", "template": "tools"},
                                 {"name": "default", "template": "{{ bos_token }}{{ eos_token }}"}]})";
  }
  auto loaded = ChatTemplate::fromTokenizerConfig(path);
  fs::remove(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto rendered = loaded.value()->render({}, false);
  ASSERT_TRUE(rendered.ok()) << rendered.error().message;
  EXPECT_EQ(rendered.value(), "<B><E>");
}

TEST(ChatTemplateLoad, RejectsMissingTemplate) {
  fs::path path = fs::temp_directory_path() / "hfchain_chat_template_missing.json";
  {
    std::ofstream out(path);
    out << R"({"bos_token": "<s>"})";
  }
  auto loaded = ChatTemplate::fromTokenizerConfig(path);
  fs::remove(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().cls, ErrorClass::kConfigRejected);
  EXPECT_EQ(loaded.error().message, path.string() + " has no chat_template");
}

TEST(ChatTemplateLoad, RejectsMissingFile) {
  auto loaded = ChatTemplate::fromTokenizerConfig("/nonexistent/tokenizer_config.json");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(loaded.error().message.find("/nonexistent/tokenizer_config.json"), std::string::npos);
}

}  // namespace
}  // namespace hfchain
