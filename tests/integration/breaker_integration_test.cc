// The breaker link over loopback HTTP against the scripted upstream: failures open the
// circuit, an open circuit sends nothing upstream, probes close or re-open it, and a probe
// that never gets a response (behaviour case C09) cannot keep it half-open. The breaker's open
// periods run on the manual clock; socket timeouts are real and short.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using std::chrono::milliseconds;
using Millis = std::chrono::duration<double, std::milli>;

constexpr const char* kStateGauge = "hfchain_breaker_state";
constexpr const char* kPrimary = "target=\"primary\"";

nlohmann::json jsonExchange(int status, const std::string& body, bool repeat = false) {
  return {{"status", status},
          {"headers", {{"content-type", "application/json"}}},
          {"chunks", {{{"text", body}}}},
          {"end", "close"},
          {"repeat", repeat}};
}

nlohmann::json overloaded() { return jsonExchange(503, R"({"error":"overloaded"})"); }

nlohmann::json done(bool repeat = false) {
  return jsonExchange(
      200, R"({"generated_text":"done","details":{"finish_reason":"length","generated_tokens":1}})",
      repeat);
}

// One TGI stream event carrying token `text`; the last one also carries the finish.
std::string tgiEvent(int index, const std::string& text, bool last) {
  nlohmann::json event = {
      {"index", index},
      {"token", {{"id", index}, {"text", text}, {"logprob", -0.1}, {"special", false}}},
      {"generated_text", nullptr},
      {"details", nullptr}};
  if (last) {
    event["generated_text"] = text;
    event["details"] = {{"finish_reason", "length"}, {"generated_tokens", index}};
  }
  return "data: " + event.dump() + "\n\n";
}

Config breakerConfig(const std::string& url, const std::string& settings,
                     int64_t first_byte_ms = 2000) {
  ParsedConfig parsed = parseConfig(
      "targets:\n  primary:\n    protocol: tgi\n    base_url: " + url +
          "\n    timeouts: {connect_ms: 1000, first_byte_ms: " + std::to_string(first_byte_ms) +
          ", idle_ms: 2000, total_ms: 5000}\n"
          "chain:\n  - link: breaker\n    settings: " +
          settings + "\n",
      "breaker-integration.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
  parsed.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
  return parsed.config;
}

Request generateRequest(bool stream = false) {
  Request request;
  request.target = "primary";
  request.inputs = "x";
  request.parameters["max_new_tokens"] = 5;
  request.stream = stream;
  return request;
}

class BreakerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setTimeSourceForTest(&clock_);
    Metrics::global().clearForTest();
  }
  void TearDown() override {
    setTimeSourceForTest(nullptr);
    if (upstreams_) upstreams_->stop();
  }

  void start(const nlohmann::json& script, const std::string& settings,
             int64_t first_byte_ms = 2000) {
    auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{{"primary", script}});
    ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
    upstreams_ = std::move(upstreams.value());
    auto engine = Engine::create(breakerConfig(upstream().baseUrl(), settings, first_byte_ms));
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    engine_ = std::move(engine.value());
  }

  replay::ScriptedUpstream& upstream() { return *upstreams_->find("primary"); }
  double state() const { return Metrics::global().value(kStateGauge, kPrimary); }

  // Sends a request that must be rejected by the open circuit without waiting.
  void expectFastFail(const char* name) {
    auto started = std::chrono::steady_clock::now();
    Generation result = engine_->generate(generateRequest());
    Millis elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(result.error.cls, ErrorClass::kCircuitOpen)
        << name << ": " << result.error.describe();
    EXPECT_LT(elapsed.count(), 50) << name;
  }

  ManualTimeSource clock_;
  std::unique_ptr<replay::ScriptedUpstreams> upstreams_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(BreakerIntegrationTest, ThreeFailuresOpenThenNoUpstreamCalls) {
  start({overloaded(), overloaded(), overloaded(), done(true)},
        "{consecutive_failures: 3, failure_rate: 0, open_ms: 1000}");
  for (int i = 0; i < 3; ++i) {
    Generation result = engine_->generate(generateRequest());
    EXPECT_EQ(result.error.cls, ErrorClass::kUpstream5xx) << result.error.describe();
  }
  EXPECT_EQ(state(), 1);
  for (int i = 0; i < 5; ++i) {
    clock_.advance(100);
    Generation result = engine_->generate(generateRequest());
    EXPECT_EQ(result.error.cls, ErrorClass::kCircuitOpen);
    EXPECT_EQ(result.error.http_status, 503);
    EXPECT_EQ(result.error.retry_after_ms, 1000 - 100 * (i + 1));
  }
  EXPECT_EQ(upstream().requestCount(), 3u);
}

TEST_F(BreakerIntegrationTest, ProbeSuccessCloses) {
  start({overloaded(), overloaded(), overloaded(), done(true)},
        "{consecutive_failures: 3, failure_rate: 0, open_ms: 1000}");
  for (int i = 0; i < 3; ++i) engine_->generate(generateRequest());
  expectFastFail("while open");
  clock_.advance(1000);
  Generation probe = engine_->generate(generateRequest());
  EXPECT_TRUE(probe.ok()) << probe.error.describe();
  EXPECT_EQ(probe.text, "done");
  EXPECT_EQ(state(), 0);
  EXPECT_EQ(engine_->generate(generateRequest()).text, "done");
  EXPECT_EQ(upstream().requestCount(), 5u);
  EXPECT_EQ(Metrics::global().value("hfchain_breaker_transitions_total",
                                    std::string(kPrimary) + ",to=\"closed\""),
            1);
}

// Behaviour case C09 with its upstream script, timed on the manual clock: at_ms values of
// the case become clock advances, and the target's 2000 ms response timeout becomes 150 ms.
TEST_F(BreakerIntegrationTest, ProbeThatNeverAnswersReopens) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/cases/C09.json");
  ASSERT_TRUE(file) << "tests/data/cases/C09.json is missing";
  nlohmann::json c09 = nlohmann::json::parse(file);
  start(c09["upstream_script"]["primary"],
        "{consecutive_failures: 3, failure_rate: 0, open_ms: 1000, half_open_probes: 1}", 150);

  EXPECT_EQ(engine_->generate(generateRequest()).error.cls, ErrorClass::kUpstream5xx);  // r1
  clock_.advance(10);
  EXPECT_FALSE(engine_->generate(generateRequest()).ok());  // r2
  clock_.advance(10);
  EXPECT_FALSE(engine_->generate(generateRequest()).ok());  // r3
  clock_.advance(80);
  expectFastFail("r4");

  clock_.advance(1100);  // 1200 ms: the open period has ended
  auto started = std::chrono::steady_clock::now();
  std::future<Generation> r5 =
      std::async(std::launch::async, [this] { return engine_->generate(generateRequest()); });
  ASSERT_TRUE(upstream().waitForRequests(4, milliseconds(2000)));
  EXPECT_EQ(state(), 2);
  clock_.advance(100);
  expectFastFail("r6 while the probe is outstanding");

  Generation probe = r5.get();
  Millis probe_ms = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(probe.error.cls, ErrorClass::kTimeout) << probe.error.describe();
  EXPECT_GE(probe_ms.count(), 140);
  EXPECT_LT(probe_ms.count(), 1000);
  EXPECT_EQ(state(), 1) << "the probe's timeout re-opens the circuit";

  clock_.advance(100);
  expectFastFail("r7");
  clock_.advance(1000);
  Generation r8 = engine_->generate(generateRequest());
  EXPECT_TRUE(r8.ok()) << r8.error.describe();
  EXPECT_EQ(r8.text, "done");
  clock_.advance(100);
  Generation r9 = engine_->generate(generateRequest());
  EXPECT_EQ(r9.text, "done") << r9.error.describe();
  EXPECT_EQ(upstream().requestCount(), 6u);
  EXPECT_EQ(state(), 0);
}

TEST_F(BreakerIntegrationTest, DroppedProbeStreamReleasesSlot) {
  nlohmann::json stalled_stream = {{"status", 200},
                                   {"headers", {{"content-type", "text/event-stream"}}},
                                   {"chunks", {{{"text", tgiEvent(1, "par", false)}}}},
                                   {"end", "stall"}};
  start({overloaded(), stalled_stream, done(true)},
        "{consecutive_failures: 1, failure_rate: 0, open_ms: 1000}");
  engine_->generate(generateRequest());
  clock_.advance(1000);
  {
    Response probe = engine_->stream(generateRequest(true));
    ASSERT_TRUE(probe.ok()) << probe.error.describe();
    Event event;
    ASSERT_TRUE(probe.stream->next(event));
    EXPECT_EQ(event.text, "par");
    expectFastFail("while the probe streams");
  }  // the caller gives up on the probe
  EXPECT_EQ(state(), 2);
  Generation next_probe = engine_->generate(generateRequest());
  EXPECT_EQ(next_probe.text, "done") << next_probe.error.describe();
  EXPECT_EQ(state(), 0);
  EXPECT_EQ(upstream().requestCount(), 3u);
}

TEST_F(BreakerIntegrationTest, FailureRateOpensAfterMinCalls) {
  start({done(), overloaded(), done(), overloaded(), done(true)},
        "{consecutive_failures: 0, failure_rate: 0.5, min_calls: 4, window_ms: 30000}");
  for (int i = 0; i < 3; ++i) {
    engine_->generate(generateRequest());
    EXPECT_EQ(state(), 0) << "after " << i + 1 << " calls";
  }
  EXPECT_EQ(engine_->generate(generateRequest()).error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(state(), 1) << "2 failures of 4 calls";
  expectFastFail("after the rate tripped");
  EXPECT_EQ(upstream().requestCount(), 4u);
}

// Slow calls are timed in real time: this test leaves the steady clock in place.
TEST_F(BreakerIntegrationTest, SlowFirstTokenOpens) {
  setTimeSourceForTest(nullptr);
  nlohmann::json slow_stream = {
      {"status", 200},
      {"headers", {{"content-type", "text/event-stream"}}},
      {"chunks", {{{"text", tgiEvent(1, "late", true)}, {"delay_ms", 120}}}},
      {"end", "close"},
      {"repeat", true}};
  start(nlohmann::json::array({slow_stream}),
        "{consecutive_failures: 1, failure_rate: 0, open_ms: 60000,"
        " slow_call: {first_token_ms: 50}}");
  Generation slow = engine_->generate(generateRequest(true));
  EXPECT_TRUE(slow.ok()) << slow.error.describe();
  EXPECT_EQ(slow.text, "late");
  EXPECT_EQ(state(), 1);
  expectFastFail("after a slow call");
  EXPECT_EQ(upstream().requestCount(), 1u);
}

}  // namespace
}  // namespace hfchain
