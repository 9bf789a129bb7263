// `hfchain generate` through a chain of two dlopen plugins against every recorded Hugging
// Face exchange, served by the replay server on loopback: tokens arrive in order and exactly
// as recorded, and errors surface with their status and message.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/process.h"
#include "replay/recording.h"
#include "replay/replay_server.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using testing::runCli;

struct Expected {
  std::vector<std::string> tokens;  // token texts as the upstream sent them
  bool error = false;               // an error answer or an error event
  std::string error_text;           // a piece of the upstream's error message
};

// Reads the expected tokens straight from the recorded body, independently of the
// engine's decoders.
Expected expectedFrom(const replay::Recording& recording) {
  Expected expected;
  std::string body = recording.body();
  if (recording.status >= 400) {
    expected.error = true;
    nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_object() && json.contains("error")) {
      const auto& error = json["error"];
      expected.error_text =
          error.is_string() ? error.get<std::string>() : error.value("message", std::string());
    } else if (json.is_object() && json.contains("message")) {
      expected.error_text = json["message"].get<std::string>();
    } else {
      expected.error_text = body.substr(0, 40);
    }
    return expected;
  }
  bool is_stream = body.find("data:") == 0;
  if (!is_stream) {
    nlohmann::json json = nlohmann::json::parse(body);
    if (json.is_array()) json = json[0];
    if (json.contains("generated_text")) {
      expected.tokens.push_back(json["generated_text"].get<std::string>());
    } else if (json["choices"][0]["message"]["content"].is_string()) {
      // A tool-call answer has no content, so it yields no tokens.
      expected.tokens.push_back(json["choices"][0]["message"]["content"].get<std::string>());
    }
    return expected;
  }
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;
    std::string data = line.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") continue;
    nlohmann::json event = nlohmann::json::parse(data);
    if (event.contains("error") && !event["error"].is_null()) {
      expected.error = true;
      const auto& error = event["error"];
      expected.error_text =
          error.is_string() ? error.get<std::string>() : error.value("message", std::string());
      continue;
    }
    if (event.contains("token")) {
      expected.tokens.push_back(event["token"]["text"].get<std::string>());
    } else if (event.contains("choices") && !event["choices"].empty()) {
      const auto& choice = event["choices"][0];
      if (choice.contains("delta") && choice["delta"].contains("content") &&
          choice["delta"]["content"].is_string()) {
        std::string content = choice["delta"]["content"].get<std::string>();
        if (!content.empty()) expected.tokens.push_back(content);
      }
    }
  }
  return expected;
}

struct Case {
  std::string file;
  std::vector<std::string> args;  // the generate options that fit the recorded request
};

std::vector<Case> recordedCases() {
  std::vector<Case> cases;
  for (const auto& entry : fs::directory_iterator(fs::path(HFCHAIN_TEST_DATA_DIR) / "recorded")) {
    if (entry.path().extension() != ".json") continue;
    auto loaded = replay::loadRecordingFile(entry.path().string());
    if (!loaded.ok()) continue;
    const replay::Recording& recording = loaded.value();
    if (recording.method != "POST" || !recording.request_json) continue;
    const nlohmann::json& body = *recording.request_json;
    if (!body.is_object()) continue;
    Case test_case;
    test_case.file = entry.path().string();
    bool stream = body.value("stream", false);
    if (body.contains("messages")) {
      test_case.args = {"--protocol", "openai"};
      const nlohmann::json& last =
          body["messages"].empty() ? nlohmann::json() : body["messages"].back();
      bool has_text = last.is_object() && last.contains("content") && last["content"].is_string();
      test_case.args.push_back(has_text ? last["content"].get<std::string>() : "hi");
    } else if (body.contains("inputs") && body["inputs"].is_string()) {
      test_case.args = {"--protocol", "tgi", "--raw", body["inputs"].get<std::string>()};
    } else {
      continue;  // a request form generate does not send, such as /v1/completions prompts
    }
    if (!stream) test_case.args.insert(test_case.args.begin(), "--no-stream");
    cases.push_back(std::move(test_case));
  }
  return cases;
}

void PrintTo(const Case& test_case, std::ostream* out) { *out << test_case.file; }

class RecordedGenerate : public ::testing::TestWithParam<Case> {};

TEST_P(RecordedGenerate, DeliversRecordedTokensOrError) {
  const Case& test_case = GetParam();
  auto loaded = replay::loadRecordingFile(test_case.file);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Expected expected = expectedFrom(loaded.value());
  replay::ReplayOptions options;
  options.any = true;
  options.chunk_bytes = 7;  // split inside lines, JSON and UTF-8 characters
  auto server = replay::ReplayServer::start({loaded.value()}, options);
  ASSERT_TRUE(server.ok()) << server.error().message;

  std::string config = (fs::path(HFCHAIN_TEST_DATA_DIR) / "configs" / "two-plugins.yaml").string();
  std::vector<std::string> args = {"generate", "--json", "--config",
                                   config,     "--url",  server.value()->baseUrl()};
  args.insert(args.end(), test_case.args.begin(), test_case.args.end());
  testing::ProcessResult result = runCli(args, {{"HFCHAIN_TEST_TOKEN", "hf_test_secret_value"}});
  EXPECT_EQ(result.err.find("hf_test_secret_value"), std::string::npos);
  EXPECT_EQ(result.out.find("hf_test_secret_value"), std::string::npos);

  std::vector<std::string> tokens;
  std::string finish_type;
  std::istringstream lines(result.out);
  std::string line;
  while (std::getline(lines, line)) {
    nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(event.is_discarded()) << "not a JSON line: " << line;
    std::string type = event["type"];
    if (type == "token" && !event["text"].get<std::string>().empty()) {
      tokens.push_back(event["text"]);
    }
    if (type != "token") finish_type = type;
  }
  if (expected.error) {
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_EQ(finish_type, "error") << result.out;
    EXPECT_NE(result.err.find(expected.error_text.substr(0, 30)), std::string::npos)
        << "stderr: " << result.err << "\nexpected to contain: " << expected.error_text;
    if (loaded.value().status >= 400) {
      EXPECT_NE(result.err.find("HTTP " + std::to_string(loaded.value().status)), std::string::npos)
          << result.err;
    }
  } else {
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(finish_type, "finish") << result.out;
  }
  std::vector<std::string> expected_tokens;
  for (const std::string& token : expected.tokens) {
    if (!token.empty()) expected_tokens.push_back(token);
  }
  EXPECT_EQ(tokens, expected_tokens);
}

std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = fs::path(info.param.file).stem().string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Recordings, RecordedGenerate, ::testing::ValuesIn(recordedCases()),
                         caseName);

TEST(GenerateCommand, UsesTwoPluginsAndHidesToken) {
  auto loaded = replay::loadRecordingFile(
      (fs::path(HFCHAIN_TEST_DATA_DIR) / "recorded" / "router-cerebras-chat-stream-usage.json")
          .string());
  ASSERT_TRUE(loaded.ok());
  replay::ReplayOptions options;
  options.any = true;
  auto server = replay::ReplayServer::start({loaded.value()}, options);
  ASSERT_TRUE(server.ok());
  std::string config = (fs::path(HFCHAIN_TEST_DATA_DIR) / "configs" / "two-plugins.yaml").string();
  testing::ProcessResult result =
      runCli({"generate", "--log-level", "trace", "--config", config, "--url",
              server.value()->baseUrl(), "--protocol", "openai", "What is deep learning?"},
             {{"HFCHAIN_TEST_TOKEN", "hf_test_secret_value"}});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("Deep learning"), std::string::npos) << result.out;
  EXPECT_NE(result.err.find("loaded plugin auth"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("loaded plugin local-responder"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("hf_test_secret_value"), std::string::npos) << result.err;
}

TEST(GenerateCommand, DefaultConfigAnswersLocallyWhenUpstreamIsDown) {
  // A closed port: the router cannot be reached, so the local responder answers.
  std::string config = (fs::path(HFCHAIN_SOURCE_DIR) / "config" / "default.yaml").string();
  testing::ProcessResult result =
      runCli({"generate", "--config", config, "--url", "http://127.0.0.1:9", "--protocol", "openai",
              "hello there"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("local answer"), std::string::npos) << result.out;
  EXPECT_NE(result.err.find("local responder"), std::string::npos) << result.err;
}

TEST(GenerateCommand, ConnectFailureWithoutLinksExitsNonZero) {
  testing::ProcessResult result =
      runCli({"generate", "--url", "http://127.0.0.1:9", "--protocol", "tgi", "--raw", "hi"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("connect_failed"), std::string::npos) << result.err;
}

TEST(GenerateCommand, MissingPromptIsUsageError) {
  testing::ProcessResult result = runCli({"generate", "--url", "http://127.0.0.1:9"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("no prompt given"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace hfchain
