// Checks hfchain::Tokenizer against ids produced by the Hugging Face tokenizers library (see
// scripts/tokenizer-vectors/) for Llama 3, Qwen 3 and Gemma 3, and its loading errors.
#include "hfchain/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
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
const char* const kTokenizerNames[] = {"llama3", "qwen3", "gemma3"};

std::string readFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::vector<int32_t> parseIds(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream stream(text);
  int32_t id = 0;
  while (stream >> id) ids.push_back(id);
  return ids;
}

std::string fromHex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// Splits text into lines that keep their trailing "\n", as the vector generator does.
std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    lines.push_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

class TokenizerVectorsTest : public ::testing::TestWithParam<const char*> {
 protected:
  struct Loaded {
    TokenizerConstSharedPtr tokenizer;
    json vectors;
  };

  // Loads each tokenizer once for the whole suite: parsing a large tokenizer.json is the
  // slowest step, especially under the sanitizers.
  static void SetUpTestSuite() {
    for (const char* name : kTokenizerNames) {
      fs::path path = kCacheDir / name / "tokenizer.json";
      if (!fs::exists(path)) continue;
      TokenizerLoadResult result = Tokenizer::load(path);
      ASSERT_TRUE(result.ok()) << result.error.message;
      Loaded entry;
      entry.tokenizer = result.tokenizer;
      entry.vectors =
          json::parse(readFile(kDataDir / "tokenizer_vectors" / (std::string(name) + ".json")));
      loaded_->emplace(name, std::move(entry));
    }
  }
  static void TearDownTestSuite() { loaded_->clear(); }

  void SetUp() override {
    auto it = loaded_->find(GetParam());
    if (it == loaded_->end()) {
      GTEST_SKIP() << "tokenizer files missing in " << kCacheDir.string()
                   << "; run scripts/fetch-tokenizers.sh first";
    }
    tokenizer_ = it->second.tokenizer.get();
    vectors_ = &it->second.vectors;
  }

  static inline std::map<std::string, Loaded>* loaded_ = new std::map<std::string, Loaded>();
  const Tokenizer* tokenizer_ = nullptr;
  const json* vectors_ = nullptr;
};

TEST_P(TokenizerVectorsTest, EncodesHardCases) {
  for (const json& item : (*vectors_)["cases"]) {
    std::string text = item["text"].get<std::string>();
    EXPECT_EQ(tokenizer_->encode(text, false), item["ids"].get<std::vector<int32_t>>())
        << "text: " << json(text).dump();
    EXPECT_EQ(tokenizer_->encode(text, true), item["ids_with_special"].get<std::vector<int32_t>>())
        << "text with special tokens: " << json(text).dump();
  }
}

TEST_P(TokenizerVectorsTest, DecodesHardCases) {
  for (const json& item : (*vectors_)["cases"]) {
    auto ids = item["ids_with_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->decode(ids, false), item["decoded"].get<std::string>())
        << "text: " << json(item["text"]).dump();
    EXPECT_EQ(tokenizer_->decode(ids, true), item["decoded_skip_special"].get<std::string>())
        << "text: " << json(item["text"]).dump();
  }
}

TEST_P(TokenizerVectorsTest, ReplacesInvalidUtf8) {
  for (const json& item : (*vectors_)["invalid_utf8"]) {
    std::string bytes = fromHex(item["bytes_hex"].get<std::string>());
    EXPECT_FALSE(Tokenizer::isValidUtf8(bytes));
    EXPECT_EQ(tokenizer_->encode(bytes, false), item["ids"].get<std::vector<int32_t>>())
        << "bytes: " << item["bytes_hex"].get<std::string>();
  }
}

TEST_P(TokenizerVectorsTest, EncodesCorpusLines) {
  std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  std::vector<std::string> lines = splitLines(corpus);
  const json& expected = (*vectors_)["corpus"]["line_ids"];
  ASSERT_EQ(lines.size(), expected.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<int32_t> ids = tokenizer_->encode(lines[i], false);
    if (ids != parseIds(expected[i].get<std::string>())) {
      ++mismatches;
      ADD_FAILURE() << "line " << i + 1 << ": " << json(lines[i]).dump();
      if (mismatches > 5) break;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(TokenizerVectorsTest, EncodesWholeCorpus) {
  std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  std::vector<int32_t> expected = parseIds((*vectors_)["corpus"]["whole_ids"].get<std::string>());
  EXPECT_EQ(tokenizer_->encode(corpus, false), expected);
  EXPECT_EQ(tokenizer_->count(corpus, false), expected.size());
}

TEST_P(TokenizerVectorsTest, DecodeRoundTripsCorpus) {
  // The corpus is already in NFC, so Qwen 3's normalizer leaves it unchanged and every
  // tokenizer must give the text back.
  std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  for (const std::string& line : splitLines(corpus)) {
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(line, true), true), line);
  }
}

TEST_P(TokenizerVectorsTest, EncodesConcurrently) {
  std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  std::vector<int32_t> expected = parseIds((*vectors_)["corpus"]["whole_ids"].get<std::string>());
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] { result = tokenizer_->encode(corpus, false); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST_P(TokenizerVectorsTest, MapsTokensAndIds) {
  for (const json& item : (*vectors_)["cases"]) {
    for (int32_t id : item["ids_with_special"].get<std::vector<int32_t>>()) {
      std::optional<std::string> token = tokenizer_->idToToken(id);
      ASSERT_TRUE(token.has_value()) << "id " << id;
      EXPECT_EQ(tokenizer_->tokenToId(*token), id) << "token " << *token;
    }
  }
  EXPECT_FALSE(tokenizer_->idToToken(-1).has_value());
  EXPECT_FALSE(tokenizer_->idToToken(1 << 30).has_value());
  EXPECT_FALSE(tokenizer_->tokenToId("no such token \x01\x02").has_value());
  EXPECT_EQ(tokenizer_->vocabSize(), (*vectors_)["vocab_size"].get<std::size_t>());
}

INSTANTIATE_TEST_SUITE_P(Shipped, TokenizerVectorsTest, ::testing::ValuesIn(kTokenizerNames),
                         [](const auto& info) { return std::string(info.param); });

// A small byte-level BPE file written inline, so the loader and the merge loop are tested
// without the fetched files.
constexpr const char* kTinyTokenizer = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 7, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
     "normalized": false, "special": true}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                    "use_regex": true},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}},
  "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
              "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false,
            "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "aa": 5, "aaa": 6},
            "merges": [["a", "b"], ["Ġ", "ab"], ["a", "a"], ["aa", "a"]]}
})";

TEST(TokenizerLoad, EncodesTinyByteLevelFile) {
  TokenizerLoadResult result = Tokenizer::fromJson(kTinyTokenizer, "tiny.json");
  ASSERT_TRUE(result.ok()) << result.error.message;
  const Tokenizer& tokenizer = *result.tokenizer;
  EXPECT_EQ(tokenizer.encode("ab ab", false), (std::vector<int32_t>{2, 4}));
  EXPECT_EQ(tokenizer.encode("ab ab", true), (std::vector<int32_t>{7, 2, 4}));
  // "aaaa": every (a a) pair has the lowest rank, so both merge before (aa a) is considered.
  EXPECT_EQ(tokenizer.encode("aaaa", false), (std::vector<int32_t>{5, 5}));
  EXPECT_EQ(tokenizer.encode("aaa", false), (std::vector<int32_t>{6}));
  EXPECT_EQ(tokenizer.encode("<s>ab", false), (std::vector<int32_t>{7, 2}));
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{7, 2, 4}, false), "<s>ab ab");
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{7, 2, 4}, true), "ab ab");
  EXPECT_EQ(tokenizer.vocabSize(), 8u);
}

TEST(TokenizerLoad, MissingFileNamesPath) {
  TokenizerLoadResult result = Tokenizer::load("/nonexistent/dir/tokenizer.json");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.error.cls, ErrorClass::kConfigRejected);
  EXPECT_NE(result.error.message.find("/nonexistent/dir/tokenizer.json"), std::string::npos)
      << result.error.message;
  EXPECT_NE(result.error.message.find("not found"), std::string::npos) << result.error.message;
}

TEST(TokenizerLoad, InvalidJsonNamesFile) {
  fs::path path = fs::temp_directory_path() / "hfchain_tokenizer_invalid.json";
  std::ofstream(path) << "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}";
  TokenizerLoadResult result = Tokenizer::load(path);
  fs::remove(path);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.error.message.find(path.string()), std::string::npos) << result.error.message;
  EXPECT_NE(result.error.message.find("invalid JSON"), std::string::npos) << result.error.message;
}

TEST(TokenizerLoad, RejectsUnsupportedModelType) {
  TokenizerLoadResult result = Tokenizer::fromJson(
      R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "wordpiece.json");
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.error.message.find("wordpiece.json"), std::string::npos);
  EXPECT_NE(result.error.message.find("unsupported model type 'WordPiece'"), std::string::npos)
      << result.error.message;
}

TEST(TokenizerLoad, RejectsUnsupportedNormalizer) {
  std::string text = kTinyTokenizer;
  text.replace(text.find("\"normalizer\": null"), 18, R"("normalizer": {"type": "Lowercase"})");
  TokenizerLoadResult result = Tokenizer::fromJson(text, "lower.json");
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.error.message.find("unsupported normalizer type 'Lowercase'"), std::string::npos)
      << result.error.message;
}

TEST(TokenizerLoad, RejectsMergeOutsideVocabulary) {
  TokenizerLoadResult result = Tokenizer::fromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})", "m.json");
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.error.message.find("merged token 'ab' is not in the vocabulary"),
            std::string::npos)
      << result.error.message;
}

TEST(TokenizerUtf8, ValidatesUtf8) {
  EXPECT_TRUE(Tokenizer::isValidUtf8(""));
  EXPECT_TRUE(Tokenizer::isValidUtf8("plain ascii text that is long enough"));
  EXPECT_TRUE(Tokenizer::isValidUtf8("\xE4\xB8\xAD\xF0\x9F\x98\x80"));
  EXPECT_FALSE(Tokenizer::isValidUtf8("\xED\xA0\x80"));  // a UTF-16 surrogate
  EXPECT_FALSE(Tokenizer::isValidUtf8("\xC0\xAF"));      // an overlong encoding
  EXPECT_FALSE(Tokenizer::isValidUtf8("abc\xF0\x9F\x98"));
}

}  // namespace
}  // namespace hfchain
