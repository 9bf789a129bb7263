// `hfchain tokens encode|count` run as a user would run it, against the reference token ids
// of the Hugging Face tokenizers library and the real Llama 3 chat template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hfchain/chat_template.h"
#include "hfchain/tokenizer.h"
#include "integration/process.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::runCli;

const fs::path kCacheDir = HFCHAIN_TOKENIZER_CACHE_DIR;
const fs::path kDataDir = HFCHAIN_TEST_DATA_DIR;

std::string writeTemp(const std::string& name, const std::string& text) {
  fs::path path = fs::temp_directory_path() / ("hfchain-tokens-test-" + name);
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

class TokensCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = (kCacheDir / "llama3" / "tokenizer.json").string();
    if (!fs::exists(tokenizer_)) {
      GTEST_SKIP() << "tokenizer files missing in " << kCacheDir.string()
                   << "; run scripts/fetch-tokenizers.sh first";
    }
  }
  std::string tokenizer_;
};

TEST_F(TokensCommand, EncodeMatchesReferenceVectors) {
  std::ifstream file(kDataDir / "tokenizer_vectors" / "llama3.json");
  json vectors = json::parse(file);
  int compared = 0;
  for (const json& entry : vectors["cases"]) {
    const std::string text = entry["text"];
    if (text.empty() || text.find('\0') != std::string::npos) continue;
    testing::ProcessResult result =
        runCli({"tokens", "encode", "--tokenizer", tokenizer_, "-"}, {}, text);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(json::parse(result.out), entry["ids_with_special"]) << "text: " << text;
    if (++compared == 12) break;
  }
  EXPECT_EQ(compared, 12);
}

TEST_F(TokensCommand, CountOfChatUsesTemplate) {
  std::string chat = writeTemp("chat.json", R"([{"role":"system","content":"Be brief."},
                                                {"role":"user","content":"What is deep learning? 👋"}])");
  testing::ProcessResult result =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--chat", chat, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json counted = json::parse(result.out);
  auto chat_template =
      ChatTemplate::fromTokenizerConfig(kCacheDir / "llama3" / "tokenizer_config.json");
  ASSERT_TRUE(chat_template.ok());
  auto prompt = (*chat_template)
                    ->render({{"system", "Be brief."}, {"user", "What is deep learning? 👋"}}, true);
  ASSERT_TRUE(prompt.ok());
  TokenizerLoadResult tokenizer = Tokenizer::load(tokenizer_);
  EXPECT_EQ(counted["tokens"], tokenizer.tokenizer->count(*prompt, false));
  EXPECT_EQ(counted["method"], "tokenizer");
}

TEST_F(TokensCommand, LimitExitsOneWhenOver) {
  testing::ProcessResult under =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--limit", "10", "Hello world"});
  EXPECT_EQ(under.exit_code, 0) << under.err;
  EXPECT_EQ(under.out, "2\n");
  testing::ProcessResult over =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--limit", "1", "Hello world"});
  EXPECT_EQ(over.exit_code, 1);
  EXPECT_NE(over.err.find("2 tokens exceed the limit of 1"), std::string::npos) << over.err;
}

TEST_F(TokensCommand, BadChatFileIsNamed) {
  std::string chat = writeTemp("bad-chat.json", R"([{"content":"no role"}])");
  testing::ProcessResult result =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--chat", chat});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("messages[0].role must be a string"), std::string::npos) << result.err;
}

// The gateway accepts OpenAI content parts, so the command counts them the same way.
TEST_F(TokensCommand, ContentPartsCountLikeText) {
  std::string parts = writeTemp(
      "parts.json", R"({"messages":[{"role":"user","content":[{"type":"text","text":"Hello "},)"
                    R"({"type":"text","text":"world"}]}]})");
  std::string plain = writeTemp("plain.json", R"([{"role":"user","content":"Hello world"}])");
  testing::ProcessResult from_parts =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--chat", parts, "--json"});
  testing::ProcessResult from_plain =
      runCli({"tokens", "count", "--tokenizer", tokenizer_, "--chat", plain, "--json"});
  ASSERT_EQ(from_parts.exit_code, 0) << from_parts.err;
  ASSERT_EQ(from_plain.exit_code, 0) << from_plain.err;
  EXPECT_EQ(json::parse(from_parts.out), json::parse(from_plain.out));
  EXPECT_EQ(json::parse(from_parts.out)["note"], "");
}

TEST(TokensCommandErrors, MissingTokenizerExitsThree) {
  testing::ProcessResult result =
      runCli({"tokens", "count", "--tokenizer", "/nonexistent/tokenizer.json", "hi"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("/nonexistent/tokenizer.json"), std::string::npos) << result.err;
}

TEST(TokensCommandErrors, ConfigTargetWithoutTokenizerEstimates) {
  std::string config = writeTemp(
      "estimate.yaml", "targets:\n  t:\n    protocol: openai\n    base_url: http://127.0.0.1:9\n");
  testing::ProcessResult result =
      runCli({"tokens", "count", "--config", config, "--target", "t", "abcdefgh"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "3\n");
  EXPECT_NE(result.err.find("estimate"), std::string::npos) << result.err;
}

TEST(TokensCommandErrors, UsageNamesBothSources) {
  testing::ProcessResult result = runCli({"tokens", "count", "hi"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("either --tokenizer FILE or --config FILE"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace hfchain
