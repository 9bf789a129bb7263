// The retry link over loopback against scripted upstreams: exact attempt counts, the waits
// taken on a manual clock, Retry-After, model loading, the retry budget, layered settings
// and streams that fail before or after their first event.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "hfchain/plugin.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using nlohmann::json;

// Installs a manual clock for the test's lifetime, so backoff waits are recorded, not slept.
class ManualClock {
 public:
  ManualClock() { setTimeSourceForTest(&source_); }
  ~ManualClock() { setTimeSourceForTest(nullptr); }
  std::vector<int64_t> sleeps() const { return source_.sleeps(); }
  void advance(int64_t ms) { source_.advance(ms); }

 private:
  ManualTimeSource source_;
};

json readCase(const std::string& id) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/cases/" + id + ".json");
  std::stringstream text;
  text << file.rdbuf();
  return json::parse(text.str());
}

json exchange(int status, const std::string& body, json headers = json::object()) {
  headers["content-type"] = "application/json";
  return {
      {"status", status}, {"headers", headers}, {"chunks", {{{"text", body}}}}, {"end", "close"}};
}

json repeated(json one) {
  one["repeat"] = true;
  return json::array({one});
}

const char* kDone =
    R"({"generated_text":"done","details":{"finish_reason":"length","generated_tokens":1}})";

// A TGI event stream: the given token texts, then the final event.
json tokenStream(const std::vector<std::string>& tokens, const std::string& end = "close") {
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
    chunks.push_back({{"text", "data: " + event.dump() + "\n\n"}});
  }
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", end}};
}

// Builds an engine whose chain is `chain_yaml` (the lines under "chain:") in front of one
// TGI target per scripted upstream.
std::unique_ptr<Engine> makeEngine(const replay::ScriptedUpstreams& servers,
                                   const std::string& chain_yaml) {
  std::string yaml = "targets:\n";
  for (const std::string& name : servers.names()) {
    yaml += "  " + name + ":\n    protocol: tgi\n    base_url: " + servers.find(name)->baseUrl() +
            "\n    timeouts: {idle_ms: 5000, total_ms: 20000}\n";
  }
  yaml += "chain:\n" + chain_yaml;
  ParsedConfig parsed = parseConfig(yaml, "retry-test.yaml");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
  auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
  auto engine = Engine::create(parsed.config, registry);
  EXPECT_TRUE(engine.ok()) << (engine.ok() ? "" : engine.error().message);
  return engine.ok() ? std::move(engine).value() : nullptr;
}

Request makeRequest(const std::string& target, bool stream = false) {
  Request request;
  request.target = target;
  request.inputs = "x";
  request.parameters["max_new_tokens"] = 4;
  request.stream = stream;
  return request;
}

// Reads a whole stream, returning each event's kind and text (or error class) in order.
std::vector<std::string> readAll(Response response) {
  std::vector<std::string> seen;
  Event event;
  while (response.stream->next(event)) {
    switch (event.kind) {
      case EventKind::kToken:
        seen.push_back("token:" + event.text);
        break;
      case EventKind::kFinish:
        seen.push_back("finish");
        break;
      case EventKind::kError:
        seen.push_back("error:" + std::string(errorClassName(event.error.cls)));
        break;
    }
  }
  return seen;
}

TEST(RetryLink, C07EachRetryHonoursLatestRetryAfter) {
  ManualClock clock;
  json spec = readCase("C07");
  auto upstreams = replay::ScriptedUpstreams::start(spec["upstream_script"]);
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n"
                           "    settings:\n"
                           "      max_attempts: 4\n"
                           "      backoff: {base_ms: 100, cap_ms: 2000, jitter: full}\n"
                           "      max_retry_after_ms: 30000\n");
  ASSERT_TRUE(engine);

  Generation r1 = engine->generate(makeRequest("primary"));
  EXPECT_TRUE(r1.ok()) << r1.error.describe();
  EXPECT_EQ(r1.text, "done");
  EXPECT_EQ(servers.find("primary")->requestCount(), 4u);
  std::vector<int64_t> sleeps = clock.sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  const int64_t kRetryAfter[] = {1000, 2000, 3000};
  int64_t total = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(sleeps[i], kRetryAfter[i]) << "wait before retry " << i + 1;
    // The backoff ceilings before the first three retries are 100, 200 and 400 ms.
    EXPECT_LE(sleeps[i], kRetryAfter[i] + 400) << "wait before retry " << i + 1;
    total += sleeps[i];
  }
  EXPECT_GE(total, 6000);

  Generation r2 = engine->generate(makeRequest("primary"));
  EXPECT_FALSE(r2.ok());
  EXPECT_EQ(r2.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(r2.error.retry_after_ms, 120'000);
  EXPECT_EQ(servers.find("primary")->requestCount(), 5u);
  EXPECT_EQ(clock.sleeps().size(), 3u) << "slept through a Retry-After above the ceiling";
}

TEST(RetryLink, C08TargetOverrideWinsWithoutMultiplying) {
  ManualClock clock;
  json spec = readCase("C08");
  auto upstreams = replay::ScriptedUpstreams::start(spec["upstream_script"]);
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n"
                           "    settings:\n"
                           "      max_attempts: 2\n"
                           "      targets: {primary: {max_attempts: 6}}\n");
  ASSERT_TRUE(engine);

  Generation r1 = engine->generate(makeRequest("primary"));
  EXPECT_EQ(r1.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(servers.find("primary")->requestCount(), 6u);

  Generation r2 = engine->generate(makeRequest("other"));
  EXPECT_EQ(r2.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(servers.find("other")->requestCount(), 2u);
}

TEST(RetryLink, TwoRetryLinksDoNotMultiply) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", repeated(exchange(500, R"({"error":"boom"})"))}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n    settings: {max_attempts: 3}\n"
                           "  - link: retry\n    settings: {max_attempts: 4}\n");
  ASSERT_TRUE(engine);

  Generation result = engine->generate(makeRequest("primary"));
  EXPECT_EQ(result.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(servers.find("primary")->requestCount(), 3u);
}

TEST(RetryLink, BackoffWithoutJitterDoublesUpToCap) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", repeated(exchange(502, R"({"error":"bad gateway"})"))}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n    settings:\n      max_attempts: 5\n"
                           "      backoff: {base_ms: 100, cap_ms: 300, jitter: none}\n");
  ASSERT_TRUE(engine);

  Generation result = engine->generate(makeRequest("primary"));
  EXPECT_EQ(result.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(servers.find("primary")->requestCount(), 5u);
  EXPECT_EQ(clock.sleeps(), (std::vector<int64_t>{100, 200, 300, 300}));
}

TEST(RetryLink, ValidationErrorIsNotRetried) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary",
            json::array(
                {exchange(422, R"({"error":"Input validation error","error_type":"validation"})"),
                 exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);

  Generation result = engine->generate(makeRequest("primary"));
  EXPECT_EQ(result.error.cls, ErrorClass::kUpstreamValidation);
  EXPECT_EQ(servers.find("primary")->requestCount(), 1u);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLink, RulesChooseRetryFailAndFallback) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({exchange(418, R"({"error":"teapot"})"), exchange(200, kDone)})},
           {"other", repeated(exchange(503, R"({"error":"overloaded"})"))},
           {"third", repeated(exchange(500, R"({"error":"boom"})"))}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers,
                           "  - link: retry\n"
                           "    settings:\n"
                           "      on:\n"
                           "        - when: {status: \"418-420\"}\n"
                           "          action: retry\n"
                           "        - when: {status: [503]}\n"
                           "          action: fallback\n"
                           "        - when: {class: upstream_5xx}\n"
                           "          action: fail\n");
  ASSERT_TRUE(engine);

  EXPECT_EQ(engine->generate(makeRequest("primary")).text, "done");
  EXPECT_EQ(servers.find("primary")->requestCount(), 2u);

  Response handed_over = engine->stream(makeRequest("other"));
  EXPECT_EQ(handed_over.error.cls, ErrorClass::kUpstream5xx);
  const std::string* mark = handed_over.headers.find("x-hfchain-handover");
  ASSERT_NE(mark, nullptr);
  EXPECT_EQ(*mark, "fallback");
  EXPECT_EQ(servers.find("other")->requestCount(), 1u);

  Response failed = engine->stream(makeRequest("third"));
  EXPECT_EQ(failed.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(failed.headers.find("x-hfchain-handover"), nullptr);
  EXPECT_EQ(servers.find("third")->requestCount(), 1u);
}

TEST(RetryLink, ModelLoadingWaitsEstimatedTime) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary",
            json::array(
                {exchange(503, R"({"error":"Model x is currently loading","estimated_time":2.5})"),
                 exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(
      servers, "  - link: retry\n    settings: {backoff: {base_ms: 100, cap_ms: 100}}\n");
  ASSERT_TRUE(engine);

  Generation result = engine->generate(makeRequest("primary"));
  EXPECT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "done");
  EXPECT_EQ(servers.find("primary")->requestCount(), 2u);
  ASSERT_EQ(clock.sleeps().size(), 1u);
  EXPECT_EQ(clock.sleeps()[0], 2500);
}

TEST(RetryLink, ModelLoadingBeyondDeadlineFailsAtOnce) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary",
            json::array(
                {exchange(503, R"({"error":"Model x is currently loading","estimated_time":20})"),
                 exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);

  Request request = makeRequest("primary");
  request.deadline = Clock::now() + std::chrono::seconds(5);
  Generation result = engine->generate(std::move(request));
  EXPECT_EQ(result.error.cls, ErrorClass::kModelLoading);
  EXPECT_DOUBLE_EQ(result.error.estimated_time_s, 20);
  EXPECT_EQ(servers.find("primary")->requestCount(), 1u);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLink, RetryAfterBeyondDeadlineFailsAtOnce) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(json{
      {"primary", json::array({exchange(429, R"({"error":"slow down"})", {{"retry-after", "10"}}),
                               exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);

  Request request = makeRequest("primary");
  request.deadline = Clock::now() + std::chrono::seconds(3);
  Generation result = engine->generate(std::move(request));
  EXPECT_EQ(result.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(result.error.retry_after_ms, 10'000);
  EXPECT_EQ(servers.find("primary")->requestCount(), 1u);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLink, BudgetStopsRetryStorm) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"budgeted", repeated(exchange(503, R"({"error":"overloaded"})"))}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine =
      makeEngine(servers,
                 "  - link: retry\n    settings:\n      max_attempts: 3\n"
                 "      budget: {ratio: 0.5, window_ms: 60000, min_retries_per_window: 2}\n");
  ASSERT_TRUE(engine);
  const std::string labels = "target=\"budgeted\"";
  double exhausted_before = Metrics::global().value("hfchain_retry_budget_exhausted_total", labels);

  // r1 spends the floor of two retries. For r2 and r3 the ratio allows at most one retry
  // per two requests, which stays below the floor already spent, so each makes one attempt.
  for (int i = 0; i < 3; ++i) {
    Generation result = engine->generate(makeRequest("budgeted"));
    EXPECT_EQ(result.error.cls, ErrorClass::kUpstream5xx) << "request " << i + 1;
  }
  EXPECT_EQ(servers.find("budgeted")->requestCount(), 5u);
  EXPECT_EQ(
      Metrics::global().value("hfchain_retry_budget_exhausted_total", labels) - exhausted_before,
      2);

  // Once the window has slid past those requests, the floor allows retries again.
  clock.advance(61'000);
  Generation result = engine->generate(makeRequest("budgeted"));
  EXPECT_EQ(result.error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(servers.find("budgeted")->requestCount(), 8u);
}

TEST(RetryLink, RetriesAreCountedByTargetAndClass) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"counted", json::array({exchange(429, R"({"error":"slow"})"), exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);
  const std::string labels = "target=\"counted\",class=\"rate_limited\"";
  double before = Metrics::global().value("hfchain_retry_attempts_total", labels);

  EXPECT_EQ(engine->generate(makeRequest("counted")).text, "done");
  EXPECT_EQ(Metrics::global().value("hfchain_retry_attempts_total", labels) - before, 1);
}

TEST(RetryLink, FirstEventErrorIsRetried) {
  ManualClock clock;
  json cut = tokenStream({}, "reset");
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({cut, tokenStream({"Hel", "lo"})})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);

  std::vector<std::string> seen = readAll(engine->stream(makeRequest("primary", true)));
  EXPECT_EQ(seen, (std::vector<std::string>{"token:Hel", "token:lo", "finish"}));
  EXPECT_EQ(servers.find("primary")->requestCount(), 2u);
}

TEST(RetryLink, NoRetryAfterFirstToken) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({tokenStream({"Hel", "lo"}, "reset"), tokenStream({"x"})})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto engine = makeEngine(servers, "  - link: retry\n");
  ASSERT_TRUE(engine);

  std::vector<std::string> seen = readAll(engine->stream(makeRequest("primary", true)));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], "token:Hel");
  EXPECT_EQ(seen[1], "token:lo");
  EXPECT_EQ(seen[2].rfind("error:", 0), 0u) << seen[2];
  EXPECT_EQ(servers.find("primary")->requestCount(), 1u);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RetryLink, AttemptsDoNotSeeEachOthersChanges) {
  ManualClock clock;
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({exchange(500, R"({"error":"boom"})"), exchange(200, kDone)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  // The tag link appends to x-tag on every call; each attempt must start from the original.
  std::string plugin = std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/plugin_good.so";
  auto engine = makeEngine(servers, "  - link: retry\n  - link: tag\n    plugin: " + plugin +
                                        "\n    settings: {value: t}\n");
  ASSERT_TRUE(engine);

  EXPECT_EQ(engine->generate(makeRequest("primary")).text, "done");
  std::vector<replay::ReceivedRequest> received = servers.find("primary")->requests();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].header("x-tag"), "t");
  EXPECT_EQ(received[1].header("x-tag"), "t");
}

TEST(RetryLink, RejectsInvalidSettings) {
  auto upstreams = replay::ScriptedUpstreams::start(json{{"primary", json::array()}});
  ASSERT_TRUE(upstreams.ok());
  const char* kBad[] = {
      "{max_attempts: 0}",
      "{backoff: {base_ms: 500, cap_ms: 100}}",
      "{backoff: {jitter: half}}",
      "{on: [{when: {status: \"600-700\"}, action: retry}]}",
      "{on: [{when: {class: [no_such_class]}, action: retry}]}",
      "{on: [{when: {status: 503}, action: maybe}]}",
      "{budget: {ratio: -1}}",
      "{targets: {primary: {budget: true}}}",
      "{max_retries: 3}",
  };
  for (const char* settings : kBad) {
    std::string yaml = "targets:\n  primary: {protocol: tgi, base_url: " +
                       upstreams.value()->find("primary")->baseUrl() +
                       "}\nchain:\n  - link: retry\n    settings: " + settings + "\n";
    ParsedConfig parsed = parseConfig(yaml, "bad.yaml");
    ASSERT_TRUE(parsed.ok()) << settings;
    auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
    auto engine = Engine::create(parsed.config, registry);
    EXPECT_FALSE(engine.ok()) << "accepted " << settings;
  }
}

}  // namespace
}  // namespace hfchain
