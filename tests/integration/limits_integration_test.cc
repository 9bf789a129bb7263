// The limits link over loopback HTTP against the scripted upstream: bursts end in 429 with
// retry_after, caller keys do not share buckets, a full concurrency limit queues and then
// times out, and a dropped stream frees its slot. Rejected requests never reach the upstream.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using Millis = std::chrono::duration<double, std::milli>;

nlohmann::json doneForever() {
  return {
      {"status", 200},
      {"headers", {{"content-type", "application/json"}}},
      {"chunks",
       {{{"text",
          R"({"generated_text":"done","details":{"finish_reason":"length","generated_tokens":1}})"}}}},
      {"end", "close"},
      {"repeat", true}};
}

// A 200 event stream that sends one token and then nothing more, holding its slot.
nlohmann::json stalledStream() {
  nlohmann::json event = {
      {"index", 1},
      {"token", {{"id", 1}, {"text", "par"}, {"logprob", -0.1}, {"special", false}}},
      {"generated_text", nullptr},
      {"details", nullptr}};
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", {{{"text", "data: " + event.dump() + "\n\n"}}}},
          {"end", "stall"}};
}

Request generateRequest(const std::string& key = "", bool stream = false) {
  Request request;
  request.inputs = "x";
  request.parameters["max_new_tokens"] = 5;
  request.stream = stream;
  if (!key.empty()) request.metadata.set("key", key);
  return request;
}

double rejections(const std::string& reason) {
  return Metrics::global().value("hfchain_limits_rejected_total", "reason=\"" + reason + "\"");
}

class LimitsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { Metrics::global().clearForTest(); }
  void TearDown() override {
    setTimeSourceForTest(nullptr);
    if (upstreams_) upstreams_->stop();
  }

  void start(const nlohmann::json& script, const std::string& settings) {
    auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{{"primary", script}});
    ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
    upstreams_ = std::move(upstreams.value());
    ParsedConfig parsed = parseConfig(
        "targets:\n  primary:\n    protocol: tgi\n    base_url: " + upstream().baseUrl() +
            "\n    timeouts: {connect_ms: 1000, first_byte_ms: 2000, idle_ms: 2000,"
            " total_ms: 5000}\n"
            "chain:\n  - link: limits\n    settings: " +
            settings + "\n",
        "limits-integration.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe();
    parsed.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
    auto engine = Engine::create(parsed.config);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    engine_ = std::move(engine.value());
  }

  replay::ScriptedUpstream& upstream() { return *upstreams_->find("primary"); }

  std::unique_ptr<replay::ScriptedUpstreams> upstreams_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(LimitsIntegrationTest, BurstThen429WithRetryAfter) {
  ManualTimeSource clock;
  setTimeSourceForTest(&clock);
  start(nlohmann::json::array({doneForever()}), "{requests_per_second: 4, burst: 3}");
  for (int i = 0; i < 3; ++i) {
    Generation result = engine_->generate(generateRequest());
    EXPECT_EQ(result.text, "done") << i << ": " << result.error.describe();
  }
  Generation rejected = engine_->generate(generateRequest());
  EXPECT_EQ(rejected.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(rejected.error.http_status, 429);
  EXPECT_EQ(rejected.error.retry_after_ms, 250);
  EXPECT_EQ(upstream().requestCount(), 3u);
  EXPECT_EQ(rejections("requests_per_second"), 1);
  clock.advance(250);
  EXPECT_EQ(engine_->generate(generateRequest()).text, "done");
  EXPECT_EQ(upstream().requestCount(), 4u);
}

TEST_F(LimitsIntegrationTest, KeysAreIsolated) {
  ManualTimeSource clock;
  setTimeSourceForTest(&clock);
  start(nlohmann::json::array({doneForever()}), "{requests_per_second: 1, burst: 2, scope: key}");
  for (int i = 0; i < 2; ++i) EXPECT_EQ(engine_->generate(generateRequest("alice")).text, "done");
  EXPECT_EQ(engine_->generate(generateRequest("alice")).error.cls, ErrorClass::kRateLimited);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(engine_->generate(generateRequest("bob")).text, "done");
  EXPECT_EQ(engine_->generate(generateRequest("bob")).error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(upstream().requestCount(), 4u);
}

TEST_F(LimitsIntegrationTest, QueuedRequestTimesOut) {
  start({stalledStream(), doneForever()},
        "{max_concurrent: 1, max_queue: 1, queue_timeout_ms: 100}");
  Response holder = engine_->stream(generateRequest("", true));
  ASSERT_TRUE(holder.ok()) << holder.error.describe();
  Event event;
  ASSERT_TRUE(holder.stream->next(event));

  auto started = std::chrono::steady_clock::now();
  Generation queued = engine_->generate(generateRequest());
  Millis waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(queued.error.cls, ErrorClass::kRateLimited) << queued.error.describe();
  EXPECT_EQ(queued.error.http_status, 429);
  EXPECT_NE(queued.error.message.find("queue_timeout_ms 100"), std::string::npos)
      << queued.error.message;
  EXPECT_GE(waited.count(), 95);
  EXPECT_LT(waited.count(), 1000);
  EXPECT_EQ(rejections("queue_timeout"), 1);
  EXPECT_EQ(upstream().requestCount(), 1u);

  holder = Response();
  EXPECT_EQ(engine_->generate(generateRequest()).text, "done");
}

TEST_F(LimitsIntegrationTest, DroppedStreamFreesSlot) {
  start({stalledStream(), doneForever()}, "{max_concurrent: 1}");
  {
    Response holder = engine_->stream(generateRequest("", true));
    ASSERT_TRUE(holder.ok()) << holder.error.describe();
    Event event;
    ASSERT_TRUE(holder.stream->next(event));
    EXPECT_EQ(event.text, "par");
    Generation full = engine_->generate(generateRequest());
    EXPECT_EQ(full.error.cls, ErrorClass::kRateLimited);
    EXPECT_EQ(rejections("queue_full"), 1);
  }
  auto started = std::chrono::steady_clock::now();
  Generation after = engine_->generate(generateRequest());
  Millis elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(after.text, "done") << after.error.describe();
  EXPECT_LT(elapsed.count(), 500);
  EXPECT_EQ(upstream().requestCount(), 2u);
}

TEST_F(LimitsIntegrationTest, QueuedRequestGetsSlotWhenStreamEnds) {
  start({stalledStream(), doneForever()},
        "{max_concurrent: 1, max_queue: 1, queue_timeout_ms: 2000}");
  auto holder = std::make_unique<Response>(engine_->stream(generateRequest("", true)));
  ASSERT_TRUE(holder->ok());
  Event event;
  ASSERT_TRUE(holder->stream->next(event));
  auto started = std::chrono::steady_clock::now();
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    holder.reset();
  });
  Generation queued = engine_->generate(generateRequest());
  Millis waited = std::chrono::steady_clock::now() - started;
  release.join();
  EXPECT_EQ(queued.text, "done") << queued.error.describe();
  EXPECT_LT(waited.count(), 1000) << "the released slot wakes the queued request";
}

}  // namespace
}  // namespace hfchain
