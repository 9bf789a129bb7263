// Token counting through the plugin ABI: a test link has the host count a request with
// the counter its target configures (the real Llama 3 tokenizer and chat template, or the
// estimate) and report the target's context window, including one read from TGI's /info
// over loopback.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "hfchain/chat_template.h"
#include "hfchain/engine.h"
#include "hfchain/tokenizer.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kCacheDir = HFCHAIN_TOKENIZER_CACHE_DIR;
const std::string kCounterPlugin = std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/plugin_counter.so";

std::unique_ptr<Engine> startEngine(const std::string& yaml) {
  ParsedConfig parsed = parseConfig(yaml, "inline");
  EXPECT_TRUE(parsed.ok()) << configError(parsed.issues).message;
  auto engine = Engine::create(parsed.config);
  EXPECT_TRUE(engine.ok()) << (engine.ok() ? "" : engine.error().message);
  return engine.ok() ? std::move(*engine) : nullptr;
}

json countOf(Engine& engine, Request request) {
  Generation answer = engine.generate(std::move(request));
  EXPECT_TRUE(answer.ok()) << answer.error.describe();
  return json::parse(answer.text, nullptr, false);
}

TEST(TokenCountThroughAbi, TokenizerTargetCountsExactly) {
  const fs::path tokenizer_path = kCacheDir / "llama3" / "tokenizer.json";
  if (!fs::exists(tokenizer_path)) {
    GTEST_SKIP() << "tokenizer files missing in " << kCacheDir.string()
                 << "; run scripts/fetch-tokenizers.sh first";
  }
  auto engine = startEngine(
      "targets:\n  llama:\n    protocol: tgi\n    base_url: http://127.0.0.1:9\n"
      "    context_window: 8192\n    tokenizer: " +
      tokenizer_path.string() + "\nchain:\n  - link: count\n    plugin: " + kCounterPlugin + "\n");
  ASSERT_TRUE(engine);
  TokenizerLoadResult tokenizer = Tokenizer::load(tokenizer_path);
  ASSERT_TRUE(tokenizer.ok());
  auto chat_template =
      ChatTemplate::fromTokenizerConfig(kCacheDir / "llama3" / "tokenizer_config.json");
  ASSERT_TRUE(chat_template.ok()) << chat_template.error().message;

  Request chat;
  chat.messages = {{"user", "Count me 👋"}};
  json counted = countOf(*engine, chat);
  auto prompt = (*chat_template)->render(chat.messages, true);
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(counted["request"]["tokens"], tokenizer.tokenizer->count(*prompt, false));
  EXPECT_EQ(counted["request"]["method"], HFC_COUNT_TOKENIZER);
  EXPECT_EQ(counted["context_window"], 8192);

  Request raw;
  raw.inputs = "wave 👋";
  counted = countOf(*engine, raw);
  EXPECT_EQ(counted["request"]["tokens"], tokenizer.tokenizer->count(raw.inputs, true));
  EXPECT_EQ(counted["text"]["tokens"], tokenizer.tokenizer->count(raw.inputs, false));
}

TEST(TokenCountThroughAbi, PlainTargetEstimates) {
  auto engine = startEngine(
      "targets:\n  plain:\n    protocol: openai\n    base_url: http://127.0.0.1:9\n"
      "chain:\n  - link: count\n    plugin: " +
      kCounterPlugin + "\n");
  ASSERT_TRUE(engine);
  Request raw;
  raw.inputs = "abcdefgh";
  json counted = countOf(*engine, raw);
  EXPECT_EQ(counted["request"]["method"], HFC_COUNT_ESTIMATE);
  EXPECT_EQ(counted["request"]["tokens"], 3);
  EXPECT_EQ(counted["context_window"], 0);
}

TEST(TokenCountThroughAbi, UnknownTargetHasNoCount) {
  auto engine = startEngine(
      "targets:\n  plain:\n    protocol: openai\n    base_url: http://127.0.0.1:9\n"
      "chain:\n  - link: count\n    plugin: " +
      kCounterPlugin + "\n");
  ASSERT_TRUE(engine);
  Request raw;
  raw.target = "missing";
  raw.inputs = "abc";
  json counted = countOf(*engine, raw);
  EXPECT_TRUE(counted["request"].is_null());
  EXPECT_TRUE(counted["text"].is_null());
  EXPECT_EQ(counted["context_window"], -1);
}

TEST(TokenCountThroughAbi, AutoWindowComesFromTgiInfo) {
  json info = {{"status", 200},
               {"headers", {{"content-type", "application/json"}}},
               {"chunks", {{{"text", R"({"max_input_tokens":2047,"max_total_tokens":2048})"}}}},
               {"end", "close"}};
  auto upstreams = replay::ScriptedUpstreams::start(json{{"tgi", {info}}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto engine = startEngine(
      "targets:\n  tgi:\n    protocol: tgi\n    base_url: " + (*upstreams)->find("tgi")->baseUrl() +
      "\n    context_window: auto\nchain:\n  - link: count\n    plugin: " + kCounterPlugin + "\n");
  ASSERT_TRUE(engine);
  Request raw;
  raw.inputs = "abc";
  EXPECT_EQ(countOf(*engine, raw)["context_window"], 2048);
  EXPECT_EQ(countOf(*engine, raw)["context_window"], 2048);
  EXPECT_EQ((*upstreams)->find("tgi")->requestCount(), 1u);
}

TEST(TokenCountThroughAbi, BadTokenizerRejectsConfig) {
  ParsedConfig parsed = parseConfig(
      "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:9\n"
      "    tokenizer: /nonexistent/tokenizer.json\n",
      "inline");
  ASSERT_TRUE(parsed.ok());
  auto engine = Engine::create(parsed.config);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(engine.error().message.find("/nonexistent/tokenizer.json"), std::string::npos);
}

TEST(TokenCountThroughAbi, EngineAddsKeyFingerprint) {
  auto engine = startEngine(
      "targets:\n  plain:\n    protocol: openai\n    base_url: http://127.0.0.1:9\n"
      "chain:\n  - link: count\n    plugin: " +
      kCounterPlugin + "\n");
  ASSERT_TRUE(engine);
  Request request;
  request.inputs = "x";
  request.metadata.set("key", "secret-key-1");
  json counted = countOf(*engine, request);
  EXPECT_EQ(counted["key_id"], keyFingerprint("secret-key-1"));
  EXPECT_EQ(counted.dump().find("secret-key-1"), std::string::npos);
}

}  // namespace
}  // namespace hfchain
