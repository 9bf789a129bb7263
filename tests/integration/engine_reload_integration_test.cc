// Engine::reload under traffic: requests keep the snapshot they started with, a bad config
// leaves the running chain in place, and concurrent streams lose nothing across many swaps.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hfchain/engine.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

// A TGI stream of `count` tokens "t0 ".."tN " sent in separate writes `delay_ms` apart.
nlohmann::json tokenStream(const std::string& prefix, int count, int delay_ms) {
  nlohmann::json chunks = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    nlohmann::json event = {{"index", i + 1},
                            {"token",
                             {{"id", i},
                              {"text", prefix + std::to_string(i) + " "},
                              {"logprob", -0.1},
                              {"special", false}}},
                            {"generated_text", nullptr},
                            {"details", nullptr}};
    if (i + 1 == count) {
      event["generated_text"] = "whole";
      event["details"] = {{"finish_reason", "length"}, {"generated_tokens", count}};
    }
    chunks.push_back({{"text", "data: " + event.dump() + "\n\n"}, {"delay_ms", delay_ms}});
  }
  return nlohmann::json::array({{{"status", 200},
                                 {"headers", {{"content-type", "text/event-stream"}}},
                                 {"chunks", chunks},
                                 {"end", "close"},
                                 {"repeat", true}}});
}

std::string expectedText(const std::string& prefix, int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += prefix + std::to_string(i) + " ";
  return text;
}

Config tgiConfig(const std::string& url, const std::string& extra_chain = "") {
  ParsedConfig parsed =
      parseConfig("targets:\n  primary:\n    protocol: tgi\n    base_url: " + url +
                      "\n    timeouts: {idle_ms: 5000, total_ms: 20000}\n" + extra_chain,
                  "reload-test.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
  return parsed.config;
}

Request rawRequest(const std::string& prompt) {
  Request request;
  request.inputs = prompt;
  request.parameters["max_new_tokens"] = 20;
  return request;
}

TEST(EngineReload, InFlightStreamKeepsOldTarget) {
  auto upstreams = replay::ScriptedUpstreams::start(
      nlohmann::json{{"old", tokenStream("old", 20, 10)}, {"new", tokenStream("new", 3, 0)}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = Engine::create(tgiConfig(servers.find("old")->baseUrl()));
  ASSERT_TRUE(engine.ok()) << engine.error().message;

  Response first = (*engine)->stream(rawRequest("r1"));
  Event event;
  ASSERT_TRUE(first.stream->next(event));
  EXPECT_EQ(event.text, "old0 ");

  // A config whose chain names an unknown link is rejected and changes nothing.
  Result<ChainSnapshotPtr> rejected = (*engine)->reload(
      tgiConfig(servers.find("new")->baseUrl(), "chain:\n  - link: no-such-link\n"));
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(rejected.error().message.find("reload-test.yaml:7:5"), std::string::npos)
      << rejected.error().message;
  EXPECT_EQ((*engine)->generate(rawRequest("r2")).text, expectedText("old", 20));

  ASSERT_TRUE((*engine)->reload(tgiConfig(servers.find("new")->baseUrl())).ok());
  Generation after = (*engine)->generate(rawRequest("r3"));
  EXPECT_EQ(after.text, expectedText("new", 3));

  std::string rest = event.text;
  while (first.stream->next(event)) {
    if (event.kind == EventKind::kToken) rest += event.text;
    if (event.kind == EventKind::kError) FAIL() << event.error.describe();
  }
  EXPECT_EQ(rest, expectedText("old", 20));
  EXPECT_EQ(servers.find("old")->requestCount(), 2u);
  EXPECT_EQ(servers.find("new")->requestCount(), 1u);
}

TEST(EngineReload, ConcurrentStreamsLoseNothing) {
  auto upstreams = replay::ScriptedUpstreams::start(
      nlohmann::json{{"a", tokenStream("a", 8, 1)}, {"b", tokenStream("b", 8, 1)}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  std::string plugin = std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/plugin_good.so";
  std::string chain =
      "chain:\n  - link: tag\n    plugin: " + plugin + "\n    settings: {value: x}\n";
  auto engine = Engine::create(tgiConfig(servers.find("a")->baseUrl(), chain));
  ASSERT_TRUE(engine.ok()) << engine.error().message;

  constexpr int kThreads = 4;
  constexpr int kRequestsPerThread = 12;
  std::atomic<int> completed{0};
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        Generation result = (*engine)->generate(rawRequest("x"));
        bool whole = result.text == expectedText("a", 8) || result.text == expectedText("b", 8);
        if (result.ok() && whole) {
          completed.fetch_add(1);
        } else {
          failures.fetch_add(1);
          ADD_FAILURE() << "lost or broken answer: '" << result.text << "' "
                        << result.error.describe();
        }
      }
    });
  }
  std::thread reloader([&] {
    int swaps = 0;
    while (!done.load() && swaps < 200) {
      const char* name = (swaps % 2 == 0) ? "b" : "a";
      EXPECT_TRUE((*engine)->reload(tgiConfig(servers.find(name)->baseUrl(), chain)).ok());
      ++swaps;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& client : clients) client.join();
  done = true;
  reloader.join();
  EXPECT_EQ(completed.load(), kThreads * kRequestsPerThread);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(servers.find("a")->requestCount() + servers.find("b")->requestCount(),
            static_cast<size_t>(kThreads * kRequestsPerThread));
}

TEST(EngineReload, RefusedPluginsThenGoodOneServes) {
  auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{
      {"primary",
       nlohmann::json::array(
           {{{"status", 200},
             {"headers", {{"content-type", "application/json"}}},
             {"chunks",
              {{{"text",
                 R"({"generated_text":"done","details":{"finish_reason":"length","generated_tokens":1}})"}}}},
             {"end", "close"},
             {"repeat", true}}})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  std::string url = upstreams.value()->find("primary")->baseUrl();
  auto engine = Engine::create(tgiConfig(url));
  ASSERT_TRUE(engine.ok());
  Request request = rawRequest("x");
  request.stream = false;
  EXPECT_EQ((*engine)->generate(request).text, "done");

  std::string dir = HFCHAIN_TEST_PLUGIN_DIR;
  for (const char* name : {"plugin_newer", "plugin_layout", "plugin_nosym"}) {
    Result<ChainSnapshotPtr> refused = (*engine)->reload(tgiConfig(
        url, std::string("chain:\n  - link: upper\n    plugin: ") + dir + "/" + name + ".so\n"));
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_NE(refused.error().message.find(name), std::string::npos) << refused.error().message;
    EXPECT_EQ((*engine)->generate(request).text, "done") << "after refusing " << name;
  }
  for (const PluginInfo& info : (*engine)->registry().list()) {
    EXPECT_EQ(info.name, "test-good") << "a refused plugin stayed registered: " << info.path;
  }
  ASSERT_TRUE((*engine)
                  ->reload(tgiConfig(
                      url, "chain:\n  - link: upper\n    plugin: " + dir + "/plugin_good.so\n"))
                  .ok());
  EXPECT_EQ((*engine)->generate(request).text, "DONE");
}

}  // namespace
}  // namespace hfchain
