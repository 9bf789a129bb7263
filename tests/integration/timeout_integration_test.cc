// The timeout link over loopback with short real timeouts: a missing first token, an idle
// stream, an upstream that never sends a status line, a shorter deadline that wins, a retry
// after a first-token timeout, and no helper thread left behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <filesystem>

#include "hfchain/engine.h"
#include "hfchain/plugin.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// A TGI event stream of `tokens`, each written `delay_ms` after the previous one, ending
// with the final event unless `end` is "stall" or "reset".
json tokenStream(const std::vector<std::string>& tokens, int delay_ms,
                 const std::string& end = "close", int first_delay_ms = -1) {
  json chunks = json::array();
  std::string whole;
  for (size_t i = 0; i < tokens.size(); ++i) {
    whole += tokens[i];
    json event = {
        {"index", i + 1},
        {"token", {{"id", i}, {"text", tokens[i]}, {"logprob", -0.1}, {"special", false}}},
        {"generated_text", nullptr},
        {"details", nullptr}};
    if (i + 1 == tokens.size() && end == "close") {
      event["generated_text"] = whole;
      event["details"] = {{"finish_reason", "length"}, {"generated_tokens", tokens.size()}};
    }
    int delay = (i == 0 && first_delay_ms >= 0) ? first_delay_ms : delay_ms;
    chunks.push_back({{"text", "data: " + event.dump() + "\n\n"}, {"delay_ms", delay}});
  }
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", end}};
}

std::unique_ptr<Engine> makeEngine(const replay::ScriptedUpstreams& servers,
                                   const std::string& chain_yaml) {
  std::string yaml = "targets:\n";
  for (const std::string& name : servers.names()) {
    yaml += "  " + name + ":\n    protocol: tgi\n    base_url: " + servers.find(name)->baseUrl() +
            "\n    timeouts: {idle_ms: 3000, total_ms: 5000}\n";
  }
  yaml += "chain:\n" + chain_yaml;
  ParsedConfig parsed = parseConfig(yaml, "timeout-test.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
  auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
  auto engine = Engine::create(parsed.config, registry);
  EXPECT_TRUE(engine.ok()) << (engine.ok() ? "" : engine.error().message);
  return engine.ok() ? std::move(engine).value() : nullptr;
}

Request streamRequest() {
  Request request;
  request.target = "primary";
  request.inputs = "x";
  request.parameters["max_new_tokens"] = 4;
  request.stream = true;
  return request;
}

struct Seen {
  std::vector<std::string> events;  // "token:<text>", "finish" or "error:<class>"
  Error error;                      // the last error event
  int64_t elapsed_ms = 0;
};

Seen readAll(Engine& engine, Request request) {
  auto start = std::chrono::steady_clock::now();
  Seen seen;
  Response response = engine.stream(std::move(request));
  Event event;
  while (response.stream->next(event)) {
    if (event.kind == EventKind::kToken) seen.events.push_back("token:" + event.text);
    if (event.kind == EventKind::kFinish) seen.events.push_back("finish");
    if (event.kind == EventKind::kError) {
      seen.events.push_back("error:" + std::string(errorClassName(event.error.cls)));
      seen.error = event.error;
    }
  }
  seen.elapsed_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
  return seen;
}

size_t threadCount() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

TEST(TimeoutLink, FirstTokenTimeoutCancelsStream) {
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({tokenStream({"late"}, 0, "close", 2000)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: timeout\n    settings: {first_token_ms: 150}\n");
  ASSERT_TRUE(engine);

  Seen seen = readAll(*engine, streamRequest());
  EXPECT_EQ(seen.events, (std::vector<std::string>{"error:timeout"}));
  EXPECT_NE(seen.error.message.find("first_token_ms (150 ms)"), std::string::npos)
      << seen.error.message;
  EXPECT_GE(seen.elapsed_ms, 140);
  EXPECT_LT(seen.elapsed_ms, 1000);
  servers.stop();
}

TEST(TimeoutLink, IdleTimeoutAfterFirstToken) {
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({tokenStream({"a", "b"}, 2000, "close", 0)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(
      servers, "  - link: timeout\n    settings: {first_token_ms: 1000, idle_ms: 150}\n");
  ASSERT_TRUE(engine);

  Seen seen = readAll(*engine, streamRequest());
  EXPECT_EQ(seen.events, (std::vector<std::string>{"token:a", "error:timeout"}));
  EXPECT_NE(seen.error.message.find("idle_ms (150 ms)"), std::string::npos) << seen.error.message;
  EXPECT_LT(seen.elapsed_ms, 1000);
  servers.stop();
}

TEST(TimeoutLink, StreamWithinLimitsPassesUnchanged) {
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({tokenStream({"a", "b", "c"}, 20)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(
      servers,
      "  - link: timeout\n    settings: {first_token_ms: 500, idle_ms: 500, total_ms: 3000}\n");
  ASSERT_TRUE(engine);

  Seen seen = readAll(*engine, streamRequest());
  EXPECT_EQ(seen.events, (std::vector<std::string>{"token:a", "token:b", "token:c", "finish"}));
}

TEST(TimeoutLink, AttemptDeadlineEndsSilentUpstream) {
  json silent = {{"status", nullptr}, {"chunks", json::array()}, {"end", "stall"}};
  auto upstreams = replay::ScriptedUpstreams::start(json{{"primary", json::array({silent})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: timeout\n    settings: {attempt_ms: 200}\n");
  ASSERT_TRUE(engine);

  Seen seen = readAll(*engine, streamRequest());
  EXPECT_EQ(seen.events, (std::vector<std::string>{"error:timeout"}));
  EXPECT_GE(seen.elapsed_ms, 180);
  EXPECT_LT(seen.elapsed_ms, 1000);
  servers.stop();
}

TEST(TimeoutLink, EarlierDeadlineIsNotExtended) {
  json silent = {{"status", nullptr}, {"chunks", json::array()}, {"end", "stall"}};
  auto upstreams = replay::ScriptedUpstreams::start(json{{"primary", json::array({silent})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: timeout\n    settings: {attempt_ms: 4000}\n");
  ASSERT_TRUE(engine);

  Request request = streamRequest();
  request.deadline = Clock::now() + milliseconds(150);
  Seen seen = readAll(*engine, std::move(request));
  EXPECT_EQ(seen.events, (std::vector<std::string>{"error:timeout"}));
  EXPECT_LT(seen.elapsed_ms, 1000);
  servers.stop();
}

TEST(TimeoutLink, RetryAfterFirstTokenTimeout) {
  auto upstreams = replay::ScriptedUpstreams::start(json{
      {"primary",
       json::array({tokenStream({"late"}, 0, "close", 2000), tokenStream({"on", " time"}, 0)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n    settings: {max_attempts: 2, backoff: {base_ms: 0, "
                           "cap_ms: 0}}\n"
                           "  - link: timeout\n    settings: {first_token_ms: 150}\n");
  ASSERT_TRUE(engine);

  Seen seen = readAll(*engine, streamRequest());
  EXPECT_EQ(seen.events, (std::vector<std::string>{"token:on", "token: time", "finish"}));
  EXPECT_EQ(servers.find("primary")->requestCount(), 2u);
  EXPECT_LT(seen.elapsed_ms, 1000);
  servers.stop();
}

TEST(TimeoutLink, AbandonedStreamLeavesNoThread) {
  const size_t threads_before = threadCount();
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({tokenStream({"late"}, 0, "stall", 2000)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  {
    auto engine = makeEngine(servers, "  - link: timeout\n    settings: {first_token_ms: 100}\n");
    ASSERT_TRUE(engine);
    Seen seen = readAll(*engine, streamRequest());
    EXPECT_EQ(seen.events, (std::vector<std::string>{"error:timeout"}));
    // Closing the upstream ends the helper thread's blocked read; destroying the engine
    // joins it.
    servers.stop();
  }
  // The transport's cancellation watcher ends on its own within about 100 ms of its last
  // request, so the count may take a moment to settle. A watcher left over from an earlier
  // test may end too, so the count may end below the starting one.
  for (int i = 0; i < 40 && threadCount() > threads_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(threadCount(), threads_before);
}

TEST(TimeoutLink, RejectsInvalidSettings) {
  auto upstreams = replay::ScriptedUpstreams::start(json{{"primary", json::array()}});
  ASSERT_TRUE(upstreams.ok());
  for (const char* settings : {"{}", "{idle_ms: 0}", "{total_ms: soon}", "{deadline_ms: 5}"}) {
    std::string yaml = "targets:\n  primary: {protocol: tgi, base_url: " +
                       upstreams.value()->find("primary")->baseUrl() +
                       "}\nchain:\n  - link: timeout\n    settings: " + settings + "\n";
    ParsedConfig parsed = parseConfig(yaml, "bad.yaml");
    ASSERT_TRUE(parsed.ok()) << settings;
    auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
    EXPECT_FALSE(Engine::create(parsed.config, registry).ok()) << "accepted " << settings;
  }
}

}  // namespace
}  // namespace hfchain
