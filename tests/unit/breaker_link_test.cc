// The breaker link's state machine, driven through a real chain on the manual clock: the
// chain ends in a scripted terminal instead of a target, so every transition and every
// retry_after is exact.
#include <gtest/gtest.h>

#include <deque>
#include <functional>

#include "hfchain/clock.h"
#include "hfchain/engine.h"
#include "hfchain/metrics.h"

namespace hfchain {
namespace {

constexpr const char* kStateGauge = "hfchain_breaker_state";
constexpr const char* kPrimary = "target=\"primary\"";

Response okResponse() {
  Event token;
  token.text = "done";
  Event finish;
  finish.kind = EventKind::kFinish;
  finish.finish_reason = "length";
  Response response;
  response.status = 200;
  response.stream = std::make_unique<VectorEventStream>(std::vector<Event>{token, finish});
  return response;
}

Response errorResponse(ErrorClass cls, int http_status) {
  Error error = makeError(cls, "scripted failure");
  error.http_status = http_status;
  Response response = makeErrorResponse(error);
  response.status = http_status;
  return response;
}

// A 200 stream whose events arrive after the given delays on the manual clock: the first
// delay before the first token, then one delay before each further token.
class TimedStream : public EventStream {
 public:
  TimedStream(ManualTimeSource& clock, std::vector<int64_t> delays_ms)
      : clock_(clock), delays_ms_(std::move(delays_ms)) {}
  bool next(Event& out) override {
    out.clear();
    if (position_ < delays_ms_.size()) {
      clock_.advance(delays_ms_[position_++]);
      out.text = "t";
      return true;
    }
    if (position_++ == delays_ms_.size()) {
      out.kind = EventKind::kFinish;
      out.finish_reason = "length";
      return true;
    }
    return false;
  }

 private:
  ManualTimeSource& clock_;
  std::vector<int64_t> delays_ms_;
  size_t position_ = 0;
};

class BreakerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setTimeSourceForTest(&clock_);
    Metrics::global().clearForTest();
  }
  void TearDown() override { setTimeSourceForTest(nullptr); }

  // Builds a chain of one breaker with `settings` (YAML flow map) in front of the script.
  void build(const std::string& settings) {
    ParsedConfig parsed = parseConfig(
        "default_target: primary\n"
        "targets:\n"
        "  primary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
        "  secondary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
        "chain:\n"
        "  - link: breaker\n"
        "    settings: " +
            settings + "\n",
        "breaker-test.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe();
    auto built = ChainSnapshot::build(parsed.config, registry_, [this](Request& request) {
      ++calls_;
      last_target_ = request.target;
      EXPECT_FALSE(script_.empty()) << "the terminal was called more often than scripted";
      if (script_.empty()) return okResponse();
      auto step = std::move(script_.front());
      script_.pop_front();
      return step(request);
    });
    ASSERT_TRUE(built.ok()) << built.error().message;
    snapshot_ = *built;
  }

  void script(int count, std::function<Response(Request&)> step) {
    for (int i = 0; i < count; ++i) script_.push_back(step);
  }
  void scriptOk(int count = 1) {
    script(count, [](Request&) { return okResponse(); });
  }
  void scriptError(int count, ErrorClass cls = ErrorClass::kUpstream5xx, int status = 503) {
    script(count, [cls, status](Request&) { return errorResponse(cls, status); });
  }

  Response send(const std::string& target = "primary") {
    Request request;
    request.id = "req";
    request.target = target;
    request.inputs = "x";
    return snapshot_->send(request);
  }
  Generation generate(const std::string& target = "primary") { return collect(send(target)); }
  double state(const char* labels = kPrimary) const {
    return Metrics::global().value(kStateGauge, labels);
  }
  double transitions(const std::string& to) const {
    return Metrics::global().value("hfchain_breaker_transitions_total",
                                   std::string(kPrimary) + ",to=\"" + to + "\"");
  }

  ManualTimeSource clock_;
  PluginRegistry registry_{{HFCHAIN_PLUGIN_DIR}};
  ChainSnapshotPtr snapshot_;
  std::deque<std::function<Response(Request&)>> script_;
  int calls_ = 0;
  std::string last_target_;
};

TEST_F(BreakerLinkTest, OpensAfterConsecutiveFailures) {
  build("{consecutive_failures: 3, failure_rate: 0, open_ms: 1000}");
  scriptError(3);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(generate().error.cls, ErrorClass::kUpstream5xx);
    EXPECT_EQ(state(), 0);
  }
  EXPECT_EQ(generate().error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(state(), 1);
  EXPECT_EQ(transitions("open"), 1);

  clock_.advance(250);
  Response rejected = send();
  EXPECT_EQ(rejected.error.cls, ErrorClass::kCircuitOpen);
  EXPECT_EQ(rejected.error.http_status, 503);
  EXPECT_EQ(rejected.error.retry_after_ms, 750);
  EXPECT_NE(rejected.error.message.find("'primary'"), std::string::npos) << rejected.error.message;
  EXPECT_NE(rejected.error.message.find("open"), std::string::npos) << rejected.error.message;
  EXPECT_EQ(calls_, 3);
}

TEST_F(BreakerLinkTest, SuccessResetsConsecutiveCount) {
  build("{consecutive_failures: 3, failure_rate: 0}");
  scriptError(2);
  scriptOk();
  scriptError(2);
  for (int i = 0; i < 5; ++i) generate();
  EXPECT_EQ(state(), 0);
  EXPECT_EQ(calls_, 5);
}

TEST_F(BreakerLinkTest, ValidationErrorsAreNotFailures) {
  build("{consecutive_failures: 2, failure_rate: 0}");
  scriptError(3, ErrorClass::kUpstreamValidation, 422);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(generate().error.cls, ErrorClass::kUpstreamValidation);
  }
  EXPECT_EQ(state(), 0);
}

TEST_F(BreakerLinkTest, ConfiguredStatusCountsAsFailure) {
  build("{consecutive_failures: 2, failure_rate: 0, failure_statuses: [429]}");
  scriptError(2, ErrorClass::kRateLimited, 429);
  generate();
  generate();
  EXPECT_EQ(state(), 1);
}

TEST_F(BreakerLinkTest, ConfiguredClassesReplaceDefaults) {
  build("{consecutive_failures: 1, failure_rate: 0, failure_classes: [timeout]}");
  scriptError(1, ErrorClass::kUpstream5xx, 500);
  generate();
  EXPECT_EQ(state(), 0);
  scriptError(1, ErrorClass::kTimeout, 0);
  generate();
  EXPECT_EQ(state(), 1);
}

TEST_F(BreakerLinkTest, HalfOpenProbeSuccessCloses) {
  build("{consecutive_failures: 1, failure_rate: 0, open_ms: 1000}");
  scriptError(1);
  generate();
  clock_.advance(999);
  EXPECT_EQ(send().error.cls, ErrorClass::kCircuitOpen);
  clock_.advance(1);
  scriptOk();
  Generation probe = generate();
  EXPECT_TRUE(probe.ok()) << probe.error.describe();
  EXPECT_EQ(probe.text, "done");
  EXPECT_EQ(state(), 0);
  EXPECT_EQ(transitions("half-open"), 1);
  EXPECT_EQ(transitions("closed"), 1);
  scriptOk();
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(calls_, 3);
}

TEST_F(BreakerLinkTest, ProbeInFlightRejectsOthers) {
  build("{consecutive_failures: 1, failure_rate: 0, open_ms: 1000, probe_timeout_ms: 5000}");
  scriptError(1);
  generate();
  clock_.advance(1000);
  scriptOk();
  Response probe = send();  // keeps the probe slot until its stream ends
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(state(), 2);
  clock_.advance(100);
  Response other = send();
  EXPECT_EQ(other.error.cls, ErrorClass::kCircuitOpen);
  EXPECT_NE(other.error.message.find("half-open"), std::string::npos) << other.error.message;
  EXPECT_EQ(other.error.retry_after_ms, 4900);
  EXPECT_TRUE(collect(std::move(probe)).ok());
  EXPECT_EQ(state(), 0);
  EXPECT_EQ(calls_, 2);
}

TEST_F(BreakerLinkTest, ProbeFailureReopensWithBackoff) {
  build(
      "{consecutive_failures: 1, failure_rate: 0, open_ms: 1000, open_backoff: 2,"
      " open_max_ms: 3000}");
  scriptError(1);
  generate();
  const int64_t expected_open_ms[] = {2000, 3000, 3000};
  clock_.advance(1000);
  for (int64_t open_ms : expected_open_ms) {
    scriptError(1);
    EXPECT_EQ(generate().error.cls, ErrorClass::kUpstream5xx);  // the probe
    EXPECT_EQ(state(), 1);
    EXPECT_EQ(send().error.retry_after_ms, open_ms);
    clock_.advance(open_ms);
  }
  scriptOk();
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(state(), 0);
  // After closing, the next open period starts from open_ms again.
  scriptError(1);
  generate();
  EXPECT_EQ(send().error.retry_after_ms, 1000);
}

TEST_F(BreakerLinkTest, CancelledProbeReleasesSlot) {
  build("{consecutive_failures: 1, failure_rate: 0, open_ms: 1000}");
  scriptError(1);
  generate();
  clock_.advance(1000);
  scriptOk();
  {
    Response probe = send();
    ASSERT_TRUE(probe.ok());
    EXPECT_EQ(send().error.cls, ErrorClass::kCircuitOpen);
  }  // the caller drops the probe's stream unread
  EXPECT_EQ(state(), 2);
  scriptOk();
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(state(), 0);
}

TEST_F(BreakerLinkTest, StuckProbeTimesOutAndReopens) {
  build("{consecutive_failures: 1, failure_rate: 0, open_ms: 1000, probe_timeout_ms: 2000}");
  scriptError(1);
  generate();
  clock_.advance(1000);
  scriptOk();
  Response stuck = send();  // never read: a probe that does not end
  ASSERT_TRUE(stuck.ok());
  clock_.advance(1999);
  EXPECT_EQ(send().error.cls, ErrorClass::kCircuitOpen);
  EXPECT_EQ(state(), 2);
  clock_.advance(1);
  Response reopened = send();
  EXPECT_EQ(reopened.error.cls, ErrorClass::kCircuitOpen);
  EXPECT_EQ(reopened.error.retry_after_ms, 1000);
  EXPECT_EQ(state(), 1);
  // The stuck probe's late success belongs to the earlier half-open period and is ignored.
  EXPECT_TRUE(collect(std::move(stuck)).ok());
  EXPECT_EQ(state(), 1);
  clock_.advance(1000);
  scriptOk();
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(state(), 0);
}

TEST_F(BreakerLinkTest, FailureRateNeedsMinCalls) {
  build("{consecutive_failures: 0, failure_rate: 0.5, min_calls: 4, window_ms: 10000}");
  scriptError(3);
  for (int i = 0; i < 3; ++i) generate();
  EXPECT_EQ(state(), 0) << "three calls are fewer than min_calls";
  scriptOk();
  generate();
  EXPECT_EQ(state(), 0) << "a success never opens the circuit";
  scriptError(1);
  generate();
  EXPECT_EQ(state(), 1) << "4 failures of 5 calls";
}

TEST_F(BreakerLinkTest, FailureRateBelowThresholdStaysClosed) {
  build("{consecutive_failures: 0, failure_rate: 0.5, min_calls: 4, window_ms: 10000}");
  for (bool failed : {false, false, true, false, true, false, true}) {
    if (failed) {
      scriptError(1);
    } else {
      scriptOk();
    }
    generate();
  }
  EXPECT_EQ(state(), 0) << "3 failures of 7 calls";
  EXPECT_EQ(calls_, 7);
}

TEST_F(BreakerLinkTest, FailureRateAtThresholdOpens) {
  build("{consecutive_failures: 0, failure_rate: 0.5, min_calls: 4, window_ms: 10000}");
  for (bool failed : {false, true, false, true}) {
    if (failed) {
      scriptError(1);
    } else {
      scriptOk();
    }
    generate();
  }
  EXPECT_EQ(state(), 1) << "2 failures of 4 calls";
  EXPECT_EQ(transitions("open"), 1);
}

TEST_F(BreakerLinkTest, WindowForgetsOldCalls) {
  build("{consecutive_failures: 0, failure_rate: 0.5, min_calls: 4, window_ms: 10000}");
  scriptError(3);
  for (int i = 0; i < 3; ++i) generate();
  clock_.advance(10000);  // the three failures leave the window
  scriptOk(3);
  for (int i = 0; i < 3; ++i) generate();
  scriptError(1);
  generate();
  EXPECT_EQ(state(), 0) << "1 failure of 4 calls in the window";
}

TEST_F(BreakerLinkTest, SlowFirstTokenCountsAsFailure) {
  build("{consecutive_failures: 2, failure_rate: 0, slow_call: {first_token_ms: 500}}");
  script(2, [this](Request&) {
    Response response;
    response.status = 200;
    response.stream = std::make_unique<TimedStream>(clock_, std::vector<int64_t>{501, 10});
    return response;
  });
  EXPECT_TRUE(generate().ok()) << "a slow call still delivers its answer";
  EXPECT_EQ(state(), 0);
  EXPECT_TRUE(generate().ok());
  EXPECT_EQ(state(), 1);
}

TEST_F(BreakerLinkTest, SlowGapCountsAsFailure) {
  build("{consecutive_failures: 1, failure_rate: 0, slow_call: {gap_ms: 300}}");
  script(1, [this](Request&) {
    Response response;
    response.status = 200;
    response.stream = std::make_unique<TimedStream>(clock_, std::vector<int64_t>{0, 300, 300});
    return response;
  });
  generate();
  EXPECT_EQ(state(), 0) << "gaps of exactly gap_ms are not slow";
  script(1, [this](Request&) {
    Response response;
    response.status = 200;
    response.stream = std::make_unique<TimedStream>(clock_, std::vector<int64_t>{0, 10, 301});
    return response;
  });
  generate();
  EXPECT_EQ(state(), 1);
}

TEST_F(BreakerLinkTest, CircuitsArePerTarget) {
  build("{consecutive_failures: 1, failure_rate: 0}");
  scriptError(1);
  generate("primary");
  EXPECT_EQ(state(), 1);
  EXPECT_EQ(send("primary").error.cls, ErrorClass::kCircuitOpen);
  scriptOk();
  EXPECT_TRUE(generate("secondary").ok());
  EXPECT_EQ(state("target=\"secondary\""), 0);
}

TEST_F(BreakerLinkTest, DefaultTargetSharesNamedCircuit) {
  build("{consecutive_failures: 1, failure_rate: 0}");
  scriptError(1);
  generate("");  // the config's default target is primary
  EXPECT_EQ(state(), 1);
  EXPECT_EQ(send("primary").error.cls, ErrorClass::kCircuitOpen);
  EXPECT_EQ(calls_, 1);
}

TEST_F(BreakerLinkTest, ErrorEventInStreamCountsAsFailure) {
  build("{consecutive_failures: 1, failure_rate: 0}");
  script(1, [](Request&) {
    Event token;
    token.text = "par";
    Event error;
    error.kind = EventKind::kError;
    error.error = makeError(ErrorClass::kConnectionReset, "reset mid-stream");
    Response response;
    response.status = 200;
    response.stream = std::make_unique<VectorEventStream>(std::vector<Event>{token, error});
    return response;
  });
  Generation result = generate();
  EXPECT_EQ(result.error.cls, ErrorClass::kConnectionReset);
  EXPECT_EQ(result.text, "par");
  EXPECT_EQ(state(), 1);
}

TEST(BreakerSettings, RejectsInvalidValues) {
  PluginRegistry registry({HFCHAIN_PLUGIN_DIR});
  const std::pair<const char*, const char*> cases[] = {
      {"{failure_rate: 1.5}", "failure_rate"},
      {"{window_ms: 0}", "window_ms"},
      {"{consecutive_failures: -1}", "consecutive_failures"},
      {"{open_backoff: 0.5}", "open_backoff"},
      {"{open_ms: 5000, open_max_ms: 1000}", "open_max_ms"},
      {"{half_open_probes: 0}", "half_open_probes"},
      {"{failure_classes: [upstream_5xx, teapot]}", "teapot"},
      {"{failure_statuses: [700]}", "700"},
      {"{slow_call: {first_token: 10}}", "slow_call.first_token"},
      {"{failure_rate: 0, consecutive_failures: 0}", "never open"},
      {"{threshold: 3}", "threshold"},
  };
  for (const auto& [settings, expected] : cases) {
    ParsedConfig parsed = parseConfig(
        std::string("targets:\n  primary: {protocol: tgi, base_url: 'http://127.0.0.1:9'}\n"
                    "chain:\n  - link: breaker\n    settings: ") +
            settings + "\n",
        "breaker-settings.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe();
    auto built =
        ChainSnapshot::build(parsed.config, registry, [](Request&) { return okResponse(); });
    ASSERT_FALSE(built.ok()) << settings;
    EXPECT_NE(built.error().message.find(expected), std::string::npos)
        << settings << ": " << built.error().message;
  }
}

}  // namespace
}  // namespace hfchain
