// Config parsing: every problem is reported with its file, line and column.
#include "hfchain/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace hfchain {
namespace {

std::string joined(const ParsedConfig& parsed) {
  std::string out;
  for (const auto& issue : parsed.issues) out += issue.describe() + "\n";
  return out;
}

TEST(Config, ParsesTargetsAndChain) {
  setenv("HFCHAIN_TEST_TOKEN", "secret-value-123", 1);
  ParsedConfig parsed = parseConfig(R"(default_target: tgi
targets:
  tgi:
    protocol: tgi
    base_url: http://127.0.0.1:8080
    model: gpt2
    context_window: 1024
    token: ${env:HFCHAIN_TEST_TOKEN}
    timeouts: {connect_ms: 100, idle_ms: 200}
chain:
  - link: auth
    settings:
      token: "${env:HFCHAIN_TEST_TOKEN}"
      required: true
      retries: 3
      ratio: 0.5
      name: "007"
  - local-responder
)",
                                    "inline.yaml");
  unsetenv("HFCHAIN_TEST_TOKEN");
  ASSERT_TRUE(parsed.ok()) << joined(parsed);
  const Config& config = parsed.config;
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& target = config.targets[0];
  EXPECT_EQ(target.protocol, Protocol::kTgi);
  EXPECT_EQ(target.base_url, "http://127.0.0.1:8080");
  EXPECT_EQ(target.context_window, 1024);
  EXPECT_EQ(target.token.value, "secret-value-123");
  EXPECT_EQ(target.timeouts.connect_ms, 100);
  EXPECT_EQ(target.timeouts.idle_ms, 200);
  EXPECT_EQ(target.timeouts.total_ms, Timeouts{}.total_ms);
  ASSERT_EQ(config.chain.size(), 2u);
  EXPECT_EQ(config.chain[0].type, "auth");
  EXPECT_EQ(config.chain[0].settings["token"], "secret-value-123");
  EXPECT_EQ(config.chain[0].settings["required"], true);
  EXPECT_EQ(config.chain[0].settings["retries"], 3);
  EXPECT_DOUBLE_EQ(config.chain[0].settings["ratio"].get<double>(), 0.5);
  EXPECT_EQ(config.chain[0].settings["name"], "007");  // quoted: stays a string
  EXPECT_EQ(config.chain[0].line, 11);
  EXPECT_EQ(config.chain[1].type, "local-responder");
}

TEST(Config, UnknownKeyHasLineAndColumn) {
  ParsedConfig parsed = parseConfig(
      "targets:\n  a:\n    protocol: tgi\n    base_url: http://x\n    modle: gpt2\n", "f.yaml");
  ASSERT_EQ(parsed.issues.size(), 1u) << joined(parsed);
  EXPECT_EQ(parsed.issues[0].line, 5);
  EXPECT_EQ(parsed.issues[0].column, 5);
  EXPECT_NE(parsed.issues[0].message.find("unknown key 'modle'"), std::string::npos);
  EXPECT_NE(parsed.issues[0].message.find("model"), std::string::npos);
  EXPECT_EQ(parsed.issues[0].describe().rfind("f.yaml:5:5: ", 0), 0u);
}

TEST(Config, ReportsEveryProblemAtOnce) {
  ParsedConfig parsed = parseConfig(R"(default_target: missing
targets:
  a:
    protocol: grpc
    base_url: ftp://x
    context_window: lots
chain:
  - settings: {}
)",
                                    "f.yaml");
  std::string all = joined(parsed);
  EXPECT_EQ(parsed.issues.size(), 5u) << all;
  EXPECT_NE(all.find("f.yaml:4:15: target 'a'.protocol is 'grpc'"), std::string::npos) << all;
  EXPECT_NE(all.find("f.yaml:5:15: target 'a'.base_url is 'ftp://x'"), std::string::npos) << all;
  EXPECT_NE(all.find("f.yaml:6:21: target 'a'.context_window must be a whole number"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("f.yaml:8:5: a chain entry has no link"), std::string::npos) << all;
  EXPECT_NE(all.find("f.yaml:1:17: default_target 'missing' is not defined"), std::string::npos)
      << all;
}

TEST(Config, MissingEnvironmentVariableIsNamedNotGuessed) {
  unsetenv("HFCHAIN_TEST_UNSET");
  ParsedConfig parsed = parseConfig(
      "targets:\n  a:\n    protocol: openai\n    base_url: http://x\n    token: "
      "${env:HFCHAIN_TEST_UNSET}\n",
      "f.yaml");
  ASSERT_EQ(parsed.issues.size(), 1u) << joined(parsed);
  EXPECT_NE(parsed.issues[0].message.find("HFCHAIN_TEST_UNSET, which is not set"),
            std::string::npos);
  EXPECT_EQ(parsed.issues[0].line, 5);
}

TEST(Config, DefaultValueAllowsUnsetVariable) {
  unsetenv("HFCHAIN_TEST_UNSET");
  ParsedConfig parsed = parseConfig(
      "targets:\n  a:\n    protocol: openai\n    base_url: ${env:HFCHAIN_TEST_UNSET:-http://d}\n",
      "f.yaml");
  ASSERT_TRUE(parsed.ok()) << joined(parsed);
  EXPECT_EQ(parsed.config.targets[0].base_url, "http://d");
}

TEST(Config, SecretNeverAppearsInIssues) {
  setenv("HFCHAIN_TEST_TOKEN", "hf_very_secret_token_value", 1);
  ParsedConfig parsed = parseConfig(
      "targets:\n  a:\n    protocol: openai\n    base_url: http://x\n    token: "
      "${env:HFCHAIN_TEST_TOKEN}\n    token_file: /x\n    bogus: ${env:HFCHAIN_TEST_TOKEN}\n",
      "f.yaml");
  unsetenv("HFCHAIN_TEST_TOKEN");
  std::string all = joined(parsed);
  EXPECT_FALSE(parsed.ok());
  EXPECT_EQ(all.find("hf_very_secret_token_value"), std::string::npos) << all;
}

TEST(Config, InvalidYamlPointsAtPosition) {
  ParsedConfig parsed = parseConfig("targets:\n  a: [1, 2\n", "f.yaml");
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_NE(parsed.issues[0].message.find("invalid YAML"), std::string::npos);
  EXPECT_GT(parsed.issues[0].line, 0);
}

TEST(Config, MissingFileIsNamed) {
  ParsedConfig parsed = loadConfigFile("/nonexistent/hfchain.yaml");
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_NE(parsed.issues[0].describe().find("/nonexistent/hfchain.yaml"), std::string::npos);
}

TEST(Config, BuiltInDefaultParses) {
  ParsedConfig parsed = parseConfig(defaultConfigYaml(), "<built-in default>");
  ASSERT_TRUE(parsed.ok()) << joined(parsed);
  EXPECT_EQ(parsed.config.default_target, "hf-router");
  ASSERT_EQ(parsed.config.chain.size(), 2u);
  EXPECT_EQ(parsed.config.chain[0].type, "local-responder");
  EXPECT_EQ(parsed.config.chain[1].type, "auth");
}

}  // namespace
}  // namespace hfchain
