// The check, plugins, models and version commands, run as a user would run them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "hfchain/abi/hfchain_plugin.h"
#include "integration/process.h"
#include "replay/recording.h"
#include "replay/replay_server.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using testing::runCli;

std::string writeTemp(const std::string& name, const std::string& text) {
  fs::path path = fs::temp_directory_path() / ("hfchain-cli-test-" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(CheckCommand, AcceptsValidConfig) {
  std::string path =
      writeTemp("ok.yaml",
                "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:1\n"
                "chain:\n  - link: local-responder\n    settings: {default: hi}\n");
  testing::ProcessResult result = runCli({"check", path});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find(path + ": ok (1 targets, 1 links)"), std::string::npos) << result.out;
}

TEST(CheckCommand, PointsAtEveryProblem) {
  std::string path =
      writeTemp("bad.yaml",
                "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:1\n"
                "    timeout: 5\n"
                "chain:\n  - link: local-responder\n    settings: {mode: sometimes}\n");
  testing::ProcessResult result = runCli({"check", path});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find(path + ":5:5: unknown key 'timeout'"), std::string::npos) << result.err;
}

TEST(CheckCommand, PluginRejectionHasPosition) {
  std::string path =
      writeTemp("plugin.yaml",
                "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:1\n"
                "chain:\n  - link: local-responder\n    settings: {mode: sometimes}\n");
  testing::ProcessResult result = runCli({"check", path});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find(path + ":6:5: link 'local-responder' rejected its settings: mode is "
                                   "'sometimes'"),
            std::string::npos)
      << result.err;
}

TEST(CheckCommand, UnknownLinkTypeIsNamed) {
  std::string path = writeTemp("unknown.yaml", "chain:\n  - link: retyr\n");
  testing::ProcessResult result = runCli({"check", path});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find(path + ":2:5: unknown link type 'retyr'"), std::string::npos)
      << result.err;
}

TEST(CheckCommand, NeverPrintsSecret) {
  std::string path =
      writeTemp("secret.yaml",
                "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:1\n"
                "    token: ${env:HFCHAIN_CHECK_SECRET}\n    bogus: 1\n"
                "chain:\n  - link: auth\n    settings: {token: "
                "\"${env:HFCHAIN_CHECK_SECRET}\", header: 5, unknown: x}\n");
  testing::ProcessResult result =
      runCli({"check", path}, {{"HFCHAIN_CHECK_SECRET", "hf_abcdef_secret"}});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.err.find("hf_abcdef_secret"), std::string::npos) << result.err;
  EXPECT_EQ(result.out.find("hf_abcdef_secret"), std::string::npos) << result.out;
}

TEST(CheckCommand, ShippedPoliciesAreValid) {
  std::vector<std::string> args = {"check",
                                   fs::path(HFCHAIN_SOURCE_DIR) / "config" / "default.yaml"};
  fs::path policies = fs::path(HFCHAIN_SOURCE_DIR) / "policies";
  if (fs::exists(policies)) {
    for (const auto& entry : fs::directory_iterator(policies)) {
      if (entry.path().extension() == ".yaml") args.push_back(entry.path().string());
    }
  }
  testing::ProcessResult result = runCli(args);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(PluginsCommand, ListsShippedPlugins) {
  testing::ProcessResult result = runCli({"plugins"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::string abi = std::to_string(HFC_ABI_VERSION);
  EXPECT_NE(result.out.find("host plugin ABI version " + abi), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("auth 1.0.0 (ABI " + abi + ")"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("link local-responder"), std::string::npos) << result.out;
}

TEST(PluginsCommand, ReportsBrokenPluginFile) {
  fs::path folder = fs::temp_directory_path() / "hfchain-cli-plugins";
  fs::create_directories(folder);
  std::ofstream(folder / "libhfchain_link_broken.so") << "not a library";
  testing::ProcessResult result = runCli({"plugins", "--plugin-path", folder.string()});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("libhfchain_link_broken.so rejected"), std::string::npos) << result.err;
  EXPECT_NE(result.out.find("auth 1.0.0"), std::string::npos) << "good plugins still listed";
  fs::remove_all(folder);
}

TEST(ModelsCommand, ReadsHubThroughReplay) {
  std::string file =
      (fs::path(HFCHAIN_TEST_DATA_DIR) / "recorded" / "hub-model-info-full.json").string();
  auto recording = replay::loadRecordingFile(file);
  ASSERT_TRUE(recording.ok());
  auto server = replay::ReplayServer::start({recording.value()}, replay::ReplayOptions{});
  ASSERT_TRUE(server.ok());
  testing::ProcessResult result =
      runCli({"models", "info", "meta-llama/Llama-3.1-8B-Instruct", "--json"},
             {{"HF_ENDPOINT", server.value()->baseUrl()}});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json info = nlohmann::json::parse(result.out, nullptr, false);
  ASSERT_FALSE(info.is_discarded()) << result.out;
  EXPECT_EQ(info["id"], "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(info["pipeline_tag"], "text-generation");
}

TEST(ModelsCommand, UnknownModelExitsNonZero) {
  std::string file =
      (fs::path(HFCHAIN_TEST_DATA_DIR) / "recorded" / "hub-model-info-full.json").string();
  auto recording = replay::loadRecordingFile(file);
  ASSERT_TRUE(recording.ok());
  auto server = replay::ReplayServer::start({recording.value()}, replay::ReplayOptions{});
  ASSERT_TRUE(server.ok());
  testing::ProcessResult result =
      runCli({"models", "info", "nobody/nothing"}, {{"HF_ENDPOINT", server.value()->baseUrl()}});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("nobody/nothing"), std::string::npos) << result.err;
}

TEST(VersionCommand, PrintsAbiVersion) {
  testing::ProcessResult result = runCli({"version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("plugin ABI " + std::to_string(HFC_ABI_VERSION)), std::string::npos)
      << result.out;
}

TEST(Cli, UnknownCommandIsUsageError) {
  testing::ProcessResult result = runCli({"frobnicate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("unknown command 'frobnicate'"), std::string::npos);
}

}  // namespace
}  // namespace hfchain
