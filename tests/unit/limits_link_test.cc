// The limits link's buckets and slots, driven through a real chain on the manual clock: the
// chain ends in a scripted terminal instead of a target, so refills and retry_after values
// are exact.
#include <gtest/gtest.h>

#include <thread>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"

namespace hfchain {
namespace {

// A 200 answer of one token and a finish event reporting `usage`.
Response answer(Usage usage = {}) {
  Event token;
  token.text = "done";
  Event finish;
  finish.kind = EventKind::kFinish;
  finish.finish_reason = "length";
  finish.usage = usage;
  Response response;
  response.status = 200;
  response.stream = std::make_unique<VectorEventStream>(std::vector<Event>{token, finish});
  return response;
}

double rejections(const std::string& reason) {
  return Metrics::global().value("hfchain_limits_rejected_total", "reason=\"" + reason + "\"");
}

class LimitsLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setTimeSourceForTest(&clock_);
    Metrics::global().clearForTest();
  }
  void TearDown() override { setTimeSourceForTest(nullptr); }

  void build(const std::string& settings) {
    ParsedConfig parsed = parseConfig(
        "default_target: primary\n"
        "targets:\n"
        "  primary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
        "  secondary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
        "chain:\n"
        "  - link: limits\n"
        "    settings: " +
            settings + "\n",
        "limits-test.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe();
    auto built = ChainSnapshot::build(parsed.config, registry_, [this](Request&) {
      ++calls_;
      return answer(usage_);
    });
    ASSERT_TRUE(built.ok()) << built.error().message;
    snapshot_ = *built;
  }

  Response send(const std::string& key = "", const std::string& target = "primary",
                int max_new_tokens = 100) {
    Request request;
    request.id = "req";
    request.target = target;
    request.inputs = "12345678";  // 8 characters: an estimate of 2 prompt tokens
    request.parameters["max_new_tokens"] = max_new_tokens;
    if (!key.empty()) request.metadata.set("key", key);
    return snapshot_->send(request);
  }
  Generation generate(const std::string& key = "", const std::string& target = "primary",
                      int max_new_tokens = 100) {
    return collect(send(key, target, max_new_tokens));
  }

  ManualTimeSource clock_;
  PluginRegistry registry_{{HFCHAIN_PLUGIN_DIR}};
  ChainSnapshotPtr snapshot_;
  Usage usage_;
  int calls_ = 0;
};

TEST_F(LimitsLinkTest, BurstThenRejectWithRetryAfter) {
  build("{requests_per_second: 2, burst: 3}");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(generate().ok()) << i;
  Response rejected = send();
  EXPECT_EQ(rejected.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(rejected.error.http_status, 429);
  EXPECT_EQ(rejected.error.retry_after_ms, 500);
  EXPECT_EQ(rejections("requests_per_second"), 1);
  clock_.advance(499);
  EXPECT_EQ(send().error.retry_after_ms, 1);
  clock_.advance(1);
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(calls_, 4);
}

TEST_F(LimitsLinkTest, KeysHaveSeparateBuckets) {
  build("{requests_per_second: 1, burst: 1, scope: key}");
  EXPECT_TRUE(generate("alice").ok());
  EXPECT_EQ(send("alice").error.cls, ErrorClass::kRateLimited);
  EXPECT_TRUE(generate("bob").ok());
  EXPECT_TRUE(generate("").ok()) << "requests without a key share one bucket of their own";
  EXPECT_EQ(send("").error.cls, ErrorClass::kRateLimited);
  // The key scope spans targets.
  EXPECT_EQ(send("bob", "secondary").error.cls, ErrorClass::kRateLimited);
}

TEST_F(LimitsLinkTest, TargetsHaveSeparateBuckets) {
  build("{requests_per_second: 1, burst: 1, scope: target}");
  EXPECT_TRUE(generate("alice", "primary").ok());
  EXPECT_EQ(send("bob", "primary").error.cls, ErrorClass::kRateLimited);
  EXPECT_TRUE(generate("bob", "secondary").ok());
  EXPECT_EQ(send("bob", "").error.cls, ErrorClass::kRateLimited)
      << "the default target shares the bucket of its name";
}

TEST_F(LimitsLinkTest, GlobalScopeSharesOneBucket) {
  build("{requests_per_second: 1, burst: 1}");
  EXPECT_TRUE(generate("alice", "primary").ok());
  EXPECT_EQ(send("bob", "secondary").error.cls, ErrorClass::kRateLimited);
}

TEST_F(LimitsLinkTest, TokenEstimateLimitsRequests) {
  // 600 tokens a minute refill 0.01 tokens a millisecond. Each request is estimated at
  // 100 new tokens plus 2 prompt tokens.
  build("{tokens_per_minute: 600}");
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(generate().ok()) << i;
  Response rejected = send();
  EXPECT_EQ(rejected.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(rejected.error.retry_after_ms, 1200) << "12 missing tokens at 0.01 per ms";
  EXPECT_EQ(rejections("tokens_per_minute"), 1);
}

TEST_F(LimitsLinkTest, ReportedUsageSettlesEstimate) {
  build("{tokens_per_minute: 600}");
  usage_.prompt_tokens = 2;
  usage_.completion_tokens = 8;  // 10 used of 102 estimated
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(generate().ok()) << i;
  // 50 tokens used, so 550 remain: five more estimates of 102 fit.
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(generate().ok()) << i;
  EXPECT_EQ(calls_, 10);
}

TEST_F(LimitsLinkTest, UsageAboveEstimateIsCharged) {
  build("{tokens_per_minute: 600}");
  usage_.prompt_tokens = 100;
  usage_.completion_tokens = 200;  // 300 used of 102 estimated
  EXPECT_TRUE(generate().ok());
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(send().error.retry_after_ms, 10200) << "600 used; 102 tokens at 0.01 per ms";
}

TEST_F(LimitsLinkTest, EstimateOverCapacityNeverPasses) {
  build("{tokens_per_minute: 600}");
  Response rejected = send("", "primary", 1000);
  EXPECT_EQ(rejected.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(rejected.error.retry_after_ms, -1);
  EXPECT_NE(rejected.error.message.find("1002"), std::string::npos) << rejected.error.message;
  EXPECT_EQ(calls_, 0);
}

TEST_F(LimitsLinkTest, WaitsUpToMaxWaitOnClock) {
  build("{requests_per_second: 1, burst: 1, max_wait_ms: 1000}");
  EXPECT_TRUE(generate().ok());
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(clock_.sleeps(), (std::vector<int64_t>{1000}));
  // The second request took its token before waiting, so a third one waits a full second.
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(clock_.sleeps(), (std::vector<int64_t>{1000, 1000}));
  EXPECT_EQ(calls_, 3);
}

TEST_F(LimitsLinkTest, SlotReleasedWhenStreamDestroyed) {
  build("{max_concurrent: 1}");
  {
    Response first = send();
    ASSERT_TRUE(first.ok());
    Event event;
    ASSERT_TRUE(first.stream->next(event));  // read the token, leave the finish unread
    Response second = send();
    EXPECT_EQ(second.error.cls, ErrorClass::kRateLimited);
    EXPECT_EQ(rejections("queue_full"), 1);
  }
  EXPECT_TRUE(generate().ok());
}

TEST_F(LimitsLinkTest, SlotReleasedAtStreamEnd) {
  build("{max_concurrent: 1}");
  Response first = send();
  EXPECT_TRUE(collect(std::move(first)).ok());
  EXPECT_TRUE(generate().ok());
}

TEST_F(LimitsLinkTest, ZeroQueueTimeoutRejectsAtOnce) {
  build("{max_concurrent: 1, max_queue: 1, queue_timeout_ms: 0}");
  Response first = send();
  ASSERT_TRUE(first.ok());
  Response second = send();
  EXPECT_EQ(second.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(rejections("queue_timeout"), 1);
}

TEST_F(LimitsLinkTest, QueuedRequestGetsReleasedSlot) {
  build("{max_concurrent: 1, max_queue: 1, queue_timeout_ms: 60000}");
  Response first = send();
  ASSERT_TRUE(first.ok());
  Generation second;
  std::thread waiter([&] { second = generate(); });
  // Whether or not the waiter has queued yet, ending the first stream lets it through.
  EXPECT_TRUE(collect(std::move(first)).ok());
  waiter.join();
  EXPECT_TRUE(second.ok()) << second.error.describe();
  EXPECT_EQ(calls_, 2);
}

TEST_F(LimitsLinkTest, RejectedRequestReturnsItsTokens) {
  build("{requests_per_second: 1, burst: 2, max_concurrent: 1}");
  Response first = send();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(send().error.cls, ErrorClass::kRateLimited);  // no slot: its token is given back
  first = Response();
  EXPECT_TRUE(generate().ok());
}

TEST(LimitsSettings, RejectsInvalidValues) {
  PluginRegistry registry({HFCHAIN_PLUGIN_DIR});
  const std::pair<const char*, const char*> cases[] = {
      {"{}", "no limit"},
      {"{requests_per_second: -1}", "requests_per_second"},
      {"{requests_per_second: 1, burst: 0}", "burst"},
      {"{tokens_per_minute: 100, scope: tenant}", "scope"},
      {"{max_concurrent: 2, max_queue: -1}", "max_queue"},
      {"{requests_per_second: 1, max_queue: 3}", "max_concurrent"},
      {"{rps: 3}", "rps"},
  };
  for (const auto& [settings, expected] : cases) {
    ParsedConfig parsed = parseConfig(
        std::string("targets:\n  primary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
                    "chain:\n  - link: limits\n    settings: ") +
            settings + "\n",
        "limits-settings.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe();
    auto built = ChainSnapshot::build(parsed.config, registry, [](Request&) { return answer(); });
    ASSERT_FALSE(built.ok()) << settings;
    EXPECT_NE(built.error().message.find(expected), std::string::npos)
        << settings << ": " << built.error().message;
  }
}

}  // namespace
}  // namespace hfchain
