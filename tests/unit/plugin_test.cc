// Plugin loading: good plugins work through the ABI, and every kind of broken plugin is
// rejected with an error that names the file and the reason, never a crash.
#include "hfchain/plugin.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hfchain/engine.h"

namespace hfchain {
namespace {

std::string testPlugin(const std::string& name) {
  return std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

Config configWithChain(const std::string& yaml) {
  ParsedConfig parsed = parseConfig(yaml, "test.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
  return parsed.config;
}

// The end of a chain for unit tests: answers "done" as two tokens, and records the last
// request it saw.
struct RecordingTerminal {
  std::shared_ptr<Request> last = std::make_shared<Request>();
  ChainSnapshot::Terminal terminal() {
    auto seen = last;
    return [seen](Request& request) {
      *seen = request;
      Event first;
      first.text = "do";
      Event second;
      second.text = "ne";
      Event finish;
      finish.kind = EventKind::kFinish;
      finish.finish_reason = "length";
      Response response;
      response.status = 200;
      response.stream =
          std::make_unique<VectorEventStream>(std::vector<Event>{first, second, finish});
      return response;
    };
  }
};

TEST(PluginLibrary, LoadsGoodPlugin) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_good"));
  ASSERT_TRUE(library.ok()) << library.error().message;
  const PluginInfo& info = library->get()->info();
  EXPECT_EQ(info.name, "test-good");
  EXPECT_EQ(info.version, "1.2.3");
  EXPECT_EQ(info.abi_version, HFC_ABI_VERSION);
  ASSERT_EQ(info.links.size(), 4u);
  EXPECT_EQ(info.links[0].name, "upper");
  EXPECT_EQ(info.links[1].name, "tag");
}

TEST(PluginLibrary, RejectsNewerAbiNamingBothVersions) {
  std::string marker = std::filesystem::temp_directory_path() / "hfchain-newer-marker";
  std::filesystem::remove(marker);
  setenv("HFCHAIN_TEST_MARKER", marker.c_str(), 1);
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_newer"));
  unsetenv("HFCHAIN_TEST_MARKER");
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.error().cls, ErrorClass::kPluginRejected);
  const std::string& message = library.error().message;
  EXPECT_NE(message.find("plugin_newer.so"), std::string::npos) << message;
  EXPECT_NE(message.find("version " + std::to_string(HFC_ABI_VERSION + 1)), std::string::npos)
      << message;
  EXPECT_NE(message.find("implements version " + std::to_string(HFC_ABI_VERSION)),
            std::string::npos)
      << message;
  // Its initialiser ran (dlopen always runs it) but nothing of it stays loaded.
  EXPECT_TRUE(std::filesystem::exists(marker));
  std::filesystem::remove(marker);
}

TEST(PluginLibrary, RejectedLibraryIsUnloaded) {
  std::string path = testPlugin("plugin_newer");
  ASSERT_FALSE(PluginLibrary::load(path).ok());
  void* still_loaded = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  EXPECT_EQ(still_loaded, nullptr);
  if (still_loaded != nullptr) dlclose(still_loaded);
}

TEST(PluginLibrary, RejectsLargerDescriptor) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_layout"));
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.error().cls, ErrorClass::kPluginRejected);
  EXPECT_NE(library.error().message.find("descriptor is"), std::string::npos)
      << library.error().message;
  EXPECT_NE(library.error().message.find("plugin_layout.so"), std::string::npos);
}

TEST(PluginLibrary, RejectsLibraryWithoutEntryPoint) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_nosym"));
  ASSERT_FALSE(library.ok());
  EXPECT_NE(library.error().message.find("hfchain_plugin_init"), std::string::npos)
      << library.error().message;
}

TEST(PluginLibrary, RejectsLinkWithoutRoundTrip) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_incomplete"));
  ASSERT_FALSE(library.ok());
  EXPECT_NE(library.error().message.find("round_trip"), std::string::npos)
      << library.error().message;
}

TEST(PluginLibrary, RejectsFileThatIsNotALibrary) {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "libhfchain_link_text.so";
  std::ofstream(path) << "this is not an ELF file\n";
  Result<PluginLibraryPtr> library = PluginLibrary::load(path.string());
  ASSERT_FALSE(library.ok());
  EXPECT_NE(library.error().message.find(path.string()), std::string::npos);
  EXPECT_NE(library.error().message.find("cannot be loaded"), std::string::npos)
      << library.error().message;
  std::filesystem::remove(path);
}

TEST(PluginLibrary, RejectsMissingFile) {
  Result<PluginLibraryPtr> library = PluginLibrary::load("/nonexistent/libhfchain_link_x.so");
  ASSERT_FALSE(library.ok());
  EXPECT_NE(library.error().message.find("no such file"), std::string::npos);
}

TEST(PluginLink, ThrowingCreateIsRejected) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_throws"));
  ASSERT_TRUE(library.ok()) << library.error().message;
  Result<LinkPtr> link = createPluginLink(*library, "thrower", R"({"a":1})");
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.error().cls, ErrorClass::kPluginRejected);
  EXPECT_NE(link.error().message.find("threw"), std::string::npos) << link.error().message;
}

TEST(PluginLink, ThrowingRoundTripBecomesErrorResponse) {
  Result<PluginLibraryPtr> library = PluginLibrary::load(testPlugin("plugin_throws"));
  ASSERT_TRUE(library.ok());
  PluginRegistry registry({HFCHAIN_TEST_PLUGIN_DIR});
  Config config = configWithChain(
      "chain:\n  - link: thrower\n    plugin: " + testPlugin("plugin_throws") + "\n");
  RecordingTerminal terminal;
  auto snapshot = ChainSnapshot::build(config, registry, terminal.terminal());
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;
  Request request;
  request.id = "r1";
  Generation result = collect((*snapshot)->send(request));
  EXPECT_EQ(result.error.cls, ErrorClass::kInternal);
  EXPECT_NE(result.error.message.find("thrower"), std::string::npos);
}

TEST(PluginLink, SettingsRejectionCarriesPluginReason) {
  PluginRegistry registry({HFCHAIN_TEST_PLUGIN_DIR});
  Config config =
      configWithChain("chain:\n  - link: tag\n    plugin: " + testPlugin("plugin_good") +
                      "\n    settings: {value: 3}\n");
  auto snapshot = ChainSnapshot::build(config, registry, RecordingTerminal().terminal());
  ASSERT_FALSE(snapshot.ok());
  EXPECT_NE(snapshot.error().message.find("value must be a string"), std::string::npos)
      << snapshot.error().message;
  EXPECT_NE(snapshot.error().message.find("test.yaml:2:"), std::string::npos)
      << snapshot.error().message;
}

TEST(Chain, LinksRunInOrderAndWrapStream) {
  PluginRegistry registry;
  std::string good = testPlugin("plugin_good");
  Config config =
      configWithChain("chain:\n  - link: tag\n    plugin: " + good +
                      "\n    settings: {value: a}\n  - link: upper\n    plugin: " + good +
                      "\n  - link: tag\n    plugin: " + good + "\n    settings: {value: b}\n");
  RecordingTerminal terminal;
  auto snapshot = ChainSnapshot::build(config, registry, terminal.terminal());
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;
  Request request;
  request.id = "r1";
  Generation result = collect((*snapshot)->send(request));
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "DONE");
  EXPECT_EQ(result.finish_reason, "length");
  const std::string* tag = terminal.last->headers.find("x-tag");
  ASSERT_NE(tag, nullptr);
  EXPECT_EQ(*tag, "a,b");
}

TEST(Chain, NestedChainRunsBeforeRest) {
  PluginRegistry registry;
  std::string good = testPlugin("plugin_good");
  Config config =
      configWithChain("chain:\n  - link: nest\n    plugin: " + good +
                      "\n    settings:\n      links:\n        - {link: tag, plugin: " + good +
                      ", settings: {value: a}}\n        - {link: upper, plugin: " + good +
                      "}\n  - link: tag\n    plugin: " + good + "\n    settings: {value: b}\n");
  RecordingTerminal terminal;
  auto snapshot = ChainSnapshot::build(config, registry, terminal.terminal());
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;
  Request request;
  request.id = "r1";
  Generation result = collect((*snapshot)->send(request));
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "DONE");
  const std::string* tag = terminal.last->headers.find("x-tag");
  ASSERT_NE(tag, nullptr);
  EXPECT_EQ(*tag, "a,b");
}

TEST(Chain, NestedChainErrorNamesLink) {
  PluginRegistry registry;
  std::string good = testPlugin("plugin_good");
  Config config = configWithChain("chain:\n  - link: nest\n    plugin: " + good +
                                  "\n    settings:\n      links: [no-such-link]\n");
  auto snapshot = ChainSnapshot::build(config, registry, RecordingTerminal().terminal());
  ASSERT_FALSE(snapshot.ok());
  EXPECT_NE(snapshot.error().message.find("no-such-link"), std::string::npos)
      << snapshot.error().message;
}

TEST(PluginRegistry, FindsLinkTypeOnSearchPath) {
  PluginRegistry registry({HFCHAIN_PLUGIN_DIR});
  Result<PluginLibraryPtr> library = registry.findLinkType("local-responder");
  ASSERT_TRUE(library.ok()) << library.error().message;
  EXPECT_EQ(library->get()->info().name, "local-responder");
}

TEST(PluginRegistry, UnknownLinkTypeNamesSearchPath) {
  PluginRegistry registry({"/nonexistent/plugins"});
  Result<PluginLibraryPtr> library = registry.findLinkType("no-such-link");
  ASSERT_FALSE(library.ok());
  EXPECT_NE(library.error().message.find("no-such-link"), std::string::npos);
  EXPECT_NE(library.error().message.find("/nonexistent/plugins"), std::string::npos);
}

TEST(PluginRegistry, BrokenPluginsLeaveGoodOnesUsable) {
  PluginRegistry registry;
  EXPECT_FALSE(registry.loadFile(testPlugin("plugin_newer")).ok());
  EXPECT_FALSE(registry.loadFile(testPlugin("plugin_layout")).ok());
  EXPECT_FALSE(registry.loadFile(testPlugin("plugin_nosym")).ok());
  for (const PluginInfo& info : registry.list()) {
    EXPECT_NE(info.name, "test-newer");
    EXPECT_NE(info.name, "test-layout");
  }
  EXPECT_FALSE(registry.findLinkType("upper_v2").ok());
  ASSERT_TRUE(registry.loadFile(testPlugin("plugin_good")).ok());
  EXPECT_TRUE(registry.findLinkType("upper").ok());
}

}  // namespace
}  // namespace hfchain
