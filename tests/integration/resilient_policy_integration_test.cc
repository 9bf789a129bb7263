// The shipped policy policies/resilient-8b-1b-local.yaml, run as written: retries honour
// Retry-After, then the fallback moves from the 8B to the 1B target, then to the local
// responder, and each step shows in the counters.
#include <gtest/gtest.h>

#include <cstdlib>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

nlohmann::json busy(int retry_after_s) {
  return {{"status", 503},
          {"headers",
           {{"content-type", "application/json"}, {"retry-after", std::to_string(retry_after_s)}}},
          {"chunks", {{{"text", R"({"error":"overloaded","error_type":"overloaded"})"}}}},
          {"end", "close"}};
}

nlohmann::json answer(const std::string& text) {
  nlohmann::json chunk = {
      {"choices", {{{"index", 0}, {"delta", {{"content", text}}}, {"finish_reason", "stop"}}}}};
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", {{{"text", "data: " + chunk.dump() + "\n\ndata: [DONE]\n\n"}}}},
          {"end", "close"},
          {"repeat", true}};
}

class ResilientPolicy : public ::testing::Test {
 protected:
  void SetUp() override { setTimeSourceForTest(&clock_); }
  void TearDown() override {
    setTimeSourceForTest(nullptr);
    unsetenv("HFCHAIN_8B_URL");
    unsetenv("HFCHAIN_1B_URL");
  }

  std::unique_ptr<Engine> start(const std::string& url_8b, const std::string& url_1b) {
    setenv("HFCHAIN_8B_URL", url_8b.c_str(), 1);
    setenv("HFCHAIN_1B_URL", url_1b.c_str(), 1);
    ParsedConfig parsed =
        loadConfigFile(std::string(HFCHAIN_SOURCE_DIR) + "/policies/resilient-8b-1b-local.yaml");
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
    auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
    auto engine = Engine::create(parsed.config, registry);
    EXPECT_TRUE(engine.ok()) << (engine.ok() ? "" : engine.error().message);
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  Request chat() {
    Request request;
    request.messages = {{"user", "What is deep learning?"}};
    return request;
  }

  ManualTimeSource clock_;
};

TEST_F(ResilientPolicy, RetriesThenFallsBackToLightModel) {
  auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{
      {"big", nlohmann::json::array({busy(1), busy(2), busy(3), busy(4)})},
      {"small", nlohmann::json::array({answer("Deep learning uses neural networks.")})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto engine = start(upstreams.value()->find("big")->baseUrl() + "/v1",
                      upstreams.value()->find("small")->baseUrl() + "/v1");
  ASSERT_NE(engine, nullptr);
  double fallbacks_before =
      Metrics::global().value("hfchain_fallback_total",
                              R"(from="main/llama-8b",to="light/llama-1b",reason="upstream_5xx")");

  Response response = engine->stream(chat());
  const std::string* tier_header = response.headers.find("x-hfchain-tier");
  const std::string tier = tier_header != nullptr ? *tier_header : "";
  Generation result = collect(std::move(response));
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "Deep learning uses neural networks.");
  EXPECT_EQ(result.served_by, "llama-1b");
  EXPECT_EQ(tier, "light");
  // One attempt and three retries on the 8B target, then one request to the 1B target.
  EXPECT_EQ(upstreams.value()->find("big")->requestCount(), 4u);
  EXPECT_EQ(upstreams.value()->find("small")->requestCount(), 1u);
  // Each retry waited at least the Retry-After of the 503 just received.
  std::vector<int64_t> sleeps = clock_.sleeps();
  ASSERT_GE(sleeps.size(), 3u);
  EXPECT_GE(sleeps[0], 1000);
  EXPECT_GE(sleeps[1], 2000);
  EXPECT_GE(sleeps[2], 3000);
  EXPECT_EQ(
      Metrics::global().value("hfchain_fallback_total",
                              R"(from="main/llama-8b",to="light/llama-1b",reason="upstream_5xx")"),
      fallbacks_before + 1)
      << Metrics::global().renderPrometheus();
  EXPECT_GE(Metrics::global().value("hfchain_retry_attempts_total",
                                    R"(target="llama-8b",class="upstream_5xx")"),
            3);
}

TEST_F(ResilientPolicy, LocalResponderAnswersWhenBothTargetsFail) {
  auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{
      {"big", nlohmann::json::array(
                  {{{"status", 500}, {"chunks", {{{"text", "{}"}}}}, {"repeat", true}}})},
      {"small", nlohmann::json::array(
                    {{{"status", 500}, {"chunks", {{{"text", "{}"}}}}, {"repeat", true}}})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto engine = start(upstreams.value()->find("big")->baseUrl() + "/v1",
                      upstreams.value()->find("small")->baseUrl() + "/v1");
  ASSERT_NE(engine, nullptr);
  Generation result = engine->generate(chat());
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_NE(result.text.find("unavailable right now"), std::string::npos) << result.text;
  // A 500 is not in the retry rules, so each target got exactly one request.
  EXPECT_EQ(upstreams.value()->find("big")->requestCount(), 1u);
  EXPECT_EQ(upstreams.value()->find("small")->requestCount(), 1u);
}

}  // namespace
}  // namespace hfchain
