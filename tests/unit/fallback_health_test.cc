// Health scores of fallback endpoints.
#include <gtest/gtest.h>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/fallback/health_scores.cc"

namespace hfchain::plugins::fallback {
namespace {

HealthSettings settings(double latency_weight, double error_weight, double alpha) {
  HealthSettings out;
  out.latency_weight = latency_weight;
  out.error_weight = error_weight;
  out.alpha = alpha;
  return out;
}

TEST(HealthScores, UnknownEndpointScoresZero) {
  HealthScores health(settings(1, 10, 0.5));
  EXPECT_EQ(health.score("a"), 0);
}

TEST(HealthScores, LatencyIsMovingAverage) {
  HealthScores health(settings(1, 0, 0.5));
  health.recordSuccess("a", 1000);  // the first sample is taken as it is
  EXPECT_DOUBLE_EQ(health.score("a"), 1.0);
  health.recordSuccess("a", 2000);
  EXPECT_DOUBLE_EQ(health.score("a"), 1.5);
}

TEST(HealthScores, FailuresRaiseAndSuccessesLowerErrorRate) {
  HealthScores health(settings(0, 10, 0.5));
  health.recordFailure("a");
  EXPECT_DOUBLE_EQ(health.score("a"), 5.0);
  health.recordFailure("a");
  EXPECT_DOUBLE_EQ(health.score("a"), 7.5);
  health.recordSuccess("a", 10);
  EXPECT_DOUBLE_EQ(health.score("a"), 3.75);
}

TEST(HealthScores, OrderPutsBestFirstAndKeepsTies) {
  HealthScores health(settings(1, 10, 0.5));
  health.recordFailure("a");
  health.recordSuccess("b", 500);
  health.recordSuccess("c", 100);
  EXPECT_EQ(health.order({"a", "b", "c", "d", "e"}),
            (std::vector<std::string>{"d", "e", "c", "b", "a"}));
}

}  // namespace
}  // namespace hfchain::plugins::fallback
