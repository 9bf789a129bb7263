// Token counters: the estimate, the tokenizer counter with its chat template, TGI's
// /tokenize over loopback, context window look-ups, and the target keys that select them.
#include "hfchain/token_counter.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>
#include <vector>

#include "hfchain/chat_template.h"
#include "hfchain/config.h"
#include "hfchain/tokenizer.h"
#include "replay/scripted_upstream.h"
#include "token_count/context_window.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kCacheDir = HFCHAIN_TOKENIZER_CACHE_DIR;
const fs::path kDataDir = HFCHAIN_TEST_DATA_DIR;

std::string readFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

// An exchange that returns a JSON body once.
json jsonExchange(int status, const json& body) {
  return {{"status", status},
          {"headers", {{"content-type", "application/json"}}},
          {"chunks", {{{"text", body.dump()}}}},
          {"end", "close"}};
}

std::unique_ptr<replay::ScriptedUpstreams> startUpstream(const json& exchanges) {
  auto upstreams = replay::ScriptedUpstreams::start(json{{"up", exchanges}});
  EXPECT_TRUE(upstreams.ok()) << (upstreams.ok() ? "" : upstreams.error().message);
  return upstreams.ok() ? std::move(*upstreams) : nullptr;
}

TEST(EstimateTokens, EmptyTextIsZero) { EXPECT_EQ(estimateTextTokens(""), 0); }

TEST(EstimateTokens, NonEmptyTextIsAtLeastOne) {
  EXPECT_EQ(estimateTextTokens("a"), 1);
  EXPECT_EQ(estimateTextTokens(" "), 1);
}

TEST(EstimateTokens, CjkAndEmojiWeighMoreThanAscii) {
  const int64_t ascii = estimateTextTokens("abcdefgh");        // 8 letters
  const int64_t cjk = estimateTextTokens("深度学习深度学习");  // 8 characters
  const int64_t emoji = estimateTextTokens("👋👋👋👋👋👋👋👋");        // 8 emoji
  EXPECT_EQ(ascii, 2);
  EXPECT_EQ(cjk, 8);
  EXPECT_EQ(emoji, 20);
}

TEST(EstimateTokens, InvalidUtf8CountsEachBadByte) {
  EXPECT_EQ(estimateTextTokens(std::string("\xff\xfe", 2)), 2);
  EXPECT_EQ(estimateTextTokens(std::string("\xe6\xb7", 2)), 2);  // a cut 3-byte character
}

TEST(EstimateTokens, ChatAddsMarkupPerMessage) {
  Request chat;
  chat.messages = {{"system", "abcd"}, {"user", "abcd"}};
  EXPECT_EQ(estimateRequestTokens(chat), 3 + 2 * (4 + 1));
  Request raw;
  raw.inputs = "abcdefgh";
  EXPECT_EQ(estimateRequestTokens(raw), 2 + 1);
}

// The estimate is checked against the real tokenizers on the mixed corpus, as a whole and
// in 40-line pieces, so that the accuracy stated in the header and docs stays true.
TEST(EstimateTokens, CorpusCloseToTokenizers) {
  const std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  ASSERT_FALSE(corpus.empty());
  std::vector<std::string> pieces;
  {
    std::istringstream lines(corpus);
    std::string line, piece;
    for (int n = 1; std::getline(lines, line); ++n) {
      piece += line + "\n";
      if (n % 40 == 0) pieces.push_back(std::exchange(piece, {}));
    }
  }
  int checked = 0;
  for (const char* name : {"llama3", "qwen3", "gemma3"}) {
    const fs::path path = kCacheDir / name / "tokenizer.json";
    if (!fs::exists(path)) continue;
    TokenizerLoadResult loaded = Tokenizer::load(path);
    ASSERT_TRUE(loaded.ok()) << loaded.error.message;
    const double exact = static_cast<double>(loaded.tokenizer->count(corpus, false));
    const double estimate = static_cast<double>(estimateTextTokens(corpus));
    EXPECT_NEAR(estimate / exact, 1.0, 0.06)
        << name << ": estimate " << estimate << ", exact " << exact;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const double piece_exact = static_cast<double>(loaded.tokenizer->count(pieces[i], false));
      const double piece_estimate = static_cast<double>(estimateTextTokens(pieces[i]));
      EXPECT_NEAR(piece_estimate / piece_exact, 1.0, 0.20) << name << ", piece " << i;
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "tokenizer files missing in " << kCacheDir.string();
}

class TokenizerCounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kCacheDir / "llama3" / "tokenizer.json")) {
      GTEST_SKIP() << "tokenizer files missing in " << kCacheDir.string()
                   << "; run scripts/fetch-tokenizers.sh first";
    }
    target_.name = "llama";
    target_.tokenizer = (kCacheDir / "llama3" / "tokenizer.json").string();
    target_.token_counter = TokenCounterKind::kTokenizer;
  }

  TargetConfig target_;
};

TEST_F(TokenizerCounterTest, RawInputsGetSpecialTokens) {
  auto counter = makeTokenCounter(target_);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  TokenizerLoadResult tokenizer = Tokenizer::load(target_.tokenizer);
  Request request;
  request.inputs = "Hello there, how are you?";
  TokenCount count = (*counter)->countRequest(request);
  EXPECT_EQ(count.method, CountMethod::kTokenizer);
  EXPECT_EQ(count.tokens, static_cast<int64_t>(tokenizer.tokenizer->count(request.inputs, true)));
  EXPECT_EQ((*counter)->countText(request.inputs).tokens,
            static_cast<int64_t>(tokenizer.tokenizer->count(request.inputs, false)));
}

TEST_F(TokenizerCounterTest, ChatIsRenderedWithTemplate) {
  auto counter = makeTokenCounter(target_);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  auto chat_template =
      ChatTemplate::fromTokenizerConfig(kCacheDir / "llama3" / "tokenizer_config.json");
  ASSERT_TRUE(chat_template.ok()) << chat_template.error().message;
  Request request;
  request.messages = {{"system", "Be brief."}, {"user", "What is deep learning?"}};
  auto prompt = (*chat_template)->render(request.messages, true);
  ASSERT_TRUE(prompt.ok()) << prompt.error().message;
  TokenizerLoadResult tokenizer = Tokenizer::load(target_.tokenizer);
  TokenCount count = (*counter)->countRequest(request);
  EXPECT_EQ(count.method, CountMethod::kTokenizer);
  EXPECT_TRUE(count.note.empty()) << count.note;
  EXPECT_EQ(count.tokens, static_cast<int64_t>(tokenizer.tokenizer->count(*prompt, false)));
}

TEST_F(TokenizerCounterTest, MissingTemplateGivesLabelledEstimate) {
  const fs::path folder = fs::temp_directory_path() / "hfchain-counter-no-template";
  fs::create_directories(folder);
  fs::copy_file(target_.tokenizer, folder / "tokenizer.json", fs::copy_options::overwrite_existing);
  target_.tokenizer = (folder / "tokenizer.json").string();
  auto counter = makeTokenCounter(target_);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  Request request;
  request.messages = {{"user", "Hello"}};
  TokenCount count = (*counter)->countRequest(request);
  EXPECT_EQ(count.method, CountMethod::kEstimate);
  EXPECT_NE(count.note.find("no chat template"), std::string::npos) << count.note;
  EXPECT_EQ(count.tokens, 3 + 4 + 1);  // "Hello" is one Llama 3 token
  fs::remove_all(folder);
}

// Copies the Llama 3 tokenizer into a folder of its own with `config` as its
// tokenizer_config.json, and returns the tokenizer's path.
std::string tokenizerWithConfig(const std::string& tokenizer, const std::string& folder_name,
                                const json& config) {
  const fs::path folder = fs::temp_directory_path() / folder_name;
  fs::create_directories(folder);
  fs::copy_file(tokenizer, folder / "tokenizer.json", fs::copy_options::overwrite_existing);
  std::ofstream(folder / "tokenizer_config.json") << config.dump();
  return (folder / "tokenizer.json").string();
}

TEST_F(TokenizerCounterTest, ConfigWithoutTemplateKeepsTokenizer) {
  target_.tokenizer = tokenizerWithConfig(target_.tokenizer, "hfchain-counter-base-model",
                                          json{{"bos_token", "<|begin_of_text|>"}});
  auto counter = makeTokenCounter(target_);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  Request raw;
  raw.inputs = "Hello world";
  EXPECT_EQ((*counter)->countRequest(raw).method, CountMethod::kTokenizer);
  Request chat;
  chat.messages = {{"user", "Hello"}};
  TokenCount count = (*counter)->countRequest(chat);
  EXPECT_EQ(count.method, CountMethod::kEstimate);
  EXPECT_NE(count.note.find("has no chat template"), std::string::npos) << count.note;
  fs::remove_all(fs::path(target_.tokenizer).parent_path());
}

TEST_F(TokenizerCounterTest, BrokenTemplateKeepsTokenizer) {
  target_.tokenizer = tokenizerWithConfig(target_.tokenizer, "hfchain-counter-bad-template",
                                          json{{"chat_template", "{% bogus %}"}});
  auto counter = makeTokenCounter(target_);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  Request raw;
  raw.inputs = "Hello world";
  EXPECT_EQ((*counter)->countRequest(raw).method, CountMethod::kTokenizer);
  Request chat;
  chat.messages = {{"user", "Hello"}};
  TokenCount count = (*counter)->countRequest(chat);
  EXPECT_EQ(count.method, CountMethod::kEstimate);
  EXPECT_NE(count.note.find("cannot be used"), std::string::npos) << count.note;
  EXPECT_NE(count.note.find("bogus"), std::string::npos) << count.note;
  fs::remove_all(fs::path(target_.tokenizer).parent_path());
}

TEST_F(TokenizerCounterTest, DirectoryIsNotTokenizer) {
  target_.tokenizer = (kCacheDir / "llama3").string();
  auto counter = makeTokenCounter(target_);
  ASSERT_FALSE(counter.ok());
  EXPECT_NE(counter.error().message.find("is a directory"), std::string::npos)
      << counter.error().message;
}

TEST_F(TokenizerCounterTest, MissingTokenizerNamesTargetAndFile) {
  target_.tokenizer = "/nonexistent/tokenizer.json";
  auto counter = makeTokenCounter(target_);
  ASSERT_FALSE(counter.ok());
  EXPECT_EQ(counter.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(counter.error().message.find("\"llama\""), std::string::npos);
  EXPECT_NE(counter.error().message.find("/nonexistent/tokenizer.json"), std::string::npos);
}

TEST(TokenCounterKinds, AutoWithoutTokenizerEstimates) {
  TargetConfig target;
  target.name = "plain";
  auto counter = makeTokenCounter(target);
  ASSERT_TRUE(counter.ok());
  TokenCount count = (*counter)->countText("abcdefgh");
  EXPECT_EQ(count.method, CountMethod::kEstimate);
  EXPECT_NE(count.note.find("\"plain\" has no tokenizer"), std::string::npos) << count.note;
}

TEST(TokenCounterKinds, ChosenEstimateHasNoNote) {
  TargetConfig target;
  target.name = "plain";
  target.token_counter = TokenCounterKind::kEstimate;
  auto counter = makeTokenCounter(target);
  ASSERT_TRUE(counter.ok());
  EXPECT_TRUE((*counter)->countText("abcdefgh").note.empty());
}

TEST(RemoteCounter, CountsWithTgiTokenize) {
  json tokens = json::array();
  for (int i = 0; i < 7; ++i)
    tokens.push_back({{"id", i}, {"text", "t"}, {"start", 0}, {"stop", 1}});
  auto upstream = startUpstream(json::array({jsonExchange(200, tokens)}));
  ASSERT_TRUE(upstream);
  TargetConfig target;
  target.name = "tgi";
  target.protocol = Protocol::kTgi;
  target.base_url = upstream->find("up")->baseUrl();
  target.token_counter = TokenCounterKind::kRemote;
  auto counter = makeTokenCounter(target);
  ASSERT_TRUE(counter.ok()) << counter.error().message;
  Request request;
  request.inputs = "Hello there";
  TokenCount count = (*counter)->countRequest(request);
  EXPECT_EQ(count.tokens, 7);
  EXPECT_EQ(count.method, CountMethod::kRemote);
  auto received = upstream->find("up")->requests();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].method, "POST");
  EXPECT_EQ(received[0].path, "/tokenize");
  EXPECT_EQ(json::parse(received[0].body)["inputs"], "Hello there");
}

TEST(RemoteCounter, ChatUsesChatTokenize) {
  json answer = {{"tokenize_response", json::array({1, 2, 3, 4})}, {"templated_text", "x"}};
  auto upstream = startUpstream(json::array({jsonExchange(200, answer)}));
  ASSERT_TRUE(upstream);
  TargetConfig target;
  target.name = "tgi";
  target.protocol = Protocol::kTgi;
  target.base_url = upstream->find("up")->baseUrl();
  target.token_counter = TokenCounterKind::kRemote;
  auto counter = makeTokenCounter(target);
  ASSERT_TRUE(counter.ok());
  Request request;
  request.messages = {{"user", "Hi"}};
  EXPECT_EQ((*counter)->countRequest(request).tokens, 4);
  auto received = upstream->find("up")->requests();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].path, "/chat_tokenize");
  EXPECT_EQ(json::parse(received[0].body)["messages"][0]["content"], "Hi");
}

TEST(RemoteCounter, FailureFallsBackToEstimate) {
  auto upstream = startUpstream(json::array({jsonExchange(500, json{{"error", "boom"}})}));
  ASSERT_TRUE(upstream);
  TargetConfig target;
  target.name = "tgi";
  target.protocol = Protocol::kTgi;
  target.base_url = upstream->find("up")->baseUrl();
  target.token_counter = TokenCounterKind::kRemote;
  auto counter = makeTokenCounter(target);
  ASSERT_TRUE(counter.ok());
  Request request;
  request.inputs = "abcdefgh";
  TokenCount count = (*counter)->countRequest(request);
  EXPECT_EQ(count.method, CountMethod::kEstimate);
  EXPECT_EQ(count.tokens, estimateRequestTokens(request));
  EXPECT_NE(count.note.find("HTTP 500"), std::string::npos) << count.note;
}

TEST(ContextWindow, TgiInfoGivesMaxTotalTokens) {
  auto upstream = startUpstream(json::array(
      {jsonExchange(200, json{{"max_input_tokens", 4095}, {"max_total_tokens", 4096}})}));
  ASSERT_TRUE(upstream);
  TargetConfig target;
  target.name = "tgi";
  target.protocol = Protocol::kTgi;
  target.base_url = upstream->find("up")->baseUrl();
  target.context_window_auto = true;
  internal::ContextWindowResolver resolver(target);
  EXPECT_EQ(resolver.get("r1"), 4096);
  EXPECT_EQ(resolver.get("r2"), 4096);  // kept, not asked again
  EXPECT_EQ(upstream->find("up")->requestCount(), 1u);
  EXPECT_EQ(upstream->find("up")->requests()[0].path, "/info");
}

TEST(ContextWindow, FailedLookUpIsNotRepeated) {
  auto upstream = startUpstream(json::array({jsonExchange(404, json{{"error", "no"}})}));
  ASSERT_TRUE(upstream);
  TargetConfig target;
  target.name = "tgi";
  target.protocol = Protocol::kTgi;
  target.base_url = upstream->find("up")->baseUrl();
  target.context_window_auto = true;
  internal::ContextWindowResolver resolver(target);
  EXPECT_EQ(resolver.get("r1"), 0);
  EXPECT_EQ(resolver.get("r2"), 0);
  EXPECT_EQ(upstream->find("up")->requestCount(), 1u);
}

TEST(ContextWindow, HubConfigJsonGivesMaxPositionEmbeddings) {
  auto upstream = startUpstream(json::array(
      {jsonExchange(200, json{{"model_type", "gemma3"},
                              {"text_config", {{"max_position_embeddings", 131072}}}})}));
  ASSERT_TRUE(upstream);
  const char* previous = std::getenv("HF_ENDPOINT");
  std::string saved = previous == nullptr ? "" : previous;
  ::setenv("HF_ENDPOINT", upstream->find("up")->baseUrl().c_str(), 1);
  TargetConfig target;
  target.name = "router";
  target.protocol = Protocol::kOpenAi;
  target.base_url = "http://127.0.0.1:9/v1";
  target.model = "google/gemma-3-4b-it";
  target.context_window_auto = true;
  internal::ContextWindowResolver resolver(target);
  EXPECT_EQ(resolver.get("r1"), 131072);
  if (previous == nullptr) {
    ::unsetenv("HF_ENDPOINT");
  } else {
    ::setenv("HF_ENDPOINT", saved.c_str(), 1);
  }
  auto received = upstream->find("up")->requests();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].path, "/google/gemma-3-4b-it/resolve/main/config.json");
}

TEST(ContextWindow, ConfiguredNumberNeedsNoLookUp) {
  TargetConfig target;
  target.context_window = 8192;
  internal::ContextWindowResolver resolver(target);
  EXPECT_EQ(resolver.get("r1"), 8192);
}

TEST(TokenCountingConfig, KeysAreParsed) {
  ParsedConfig parsed = parseConfig(R"(
targets:
  t:
    protocol: tgi
    base_url: http://127.0.0.1:1
    context_window: auto
    tokenizer: models/tokenizer.json
    token_counter: remote
)",
                                    "inline", "/srv/hfchain");
  ASSERT_TRUE(parsed.ok()) << configError(parsed.issues).message;
  const TargetConfig& target = parsed.config.targets.at(0);
  EXPECT_TRUE(target.context_window_auto);
  EXPECT_EQ(target.tokenizer, "/srv/hfchain/models/tokenizer.json");
  EXPECT_EQ(target.token_counter, TokenCounterKind::kRemote);
}

TEST(TokenCountingConfig, UnknownCounterIsRejected) {
  ParsedConfig parsed = parseConfig(R"(
targets:
  t:
    protocol: tgi
    base_url: http://127.0.0.1:1
    token_counter: exact
)",
                                    "inline");
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_NE(parsed.issues[0].message.find("'exact'"), std::string::npos);
  EXPECT_NE(parsed.issues[0].message.find("auto, tokenizer, remote or estimate"),
            std::string::npos);
}

TEST(TokenCountingConfig, RemoteNeedsTgi) {
  ParsedConfig parsed = parseConfig(R"(
targets:
  t:
    protocol: openai
    base_url: http://127.0.0.1:1
    token_counter: remote
)",
                                    "inline");
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_NE(parsed.issues[0].message.find("protocol: tgi"), std::string::npos);
}

TEST(TokenCountingConfig, TokenizerCounterNeedsFile) {
  ParsedConfig parsed = parseConfig(R"(
targets:
  t:
    protocol: tgi
    base_url: http://127.0.0.1:1
    token_counter: tokenizer
)",
                                    "inline");
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_NE(parsed.issues[0].message.find("tokenizer: PATH/tokenizer.json"), std::string::npos);
}

TEST(KeyFingerprint, StableAndNotTheKey) {
  const std::string key = "hf_secretkey123";
  EXPECT_EQ(keyFingerprint(key), keyFingerprint(key));
  EXPECT_NE(keyFingerprint(key), keyFingerprint("hf_otherkey"));
  EXPECT_EQ(keyFingerprint(key).find(key), std::string::npos);
  EXPECT_EQ(keyFingerprint(key).size(), 4u + 16u);
}

}  // namespace
}  // namespace hfchain
