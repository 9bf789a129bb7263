// The budget shared by hedges and extra attempts of the fallback link.
#include <gtest/gtest.h>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/fallback/hedge_budget.cc"

namespace hfchain::plugins::fallback {
namespace {

BudgetSettings settings(double ratio, int64_t window_ms, int64_t min_per_window) {
  BudgetSettings out;
  out.ratio = ratio;
  out.window_ms = window_ms;
  out.min_per_window = min_per_window;
  return out;
}

TEST(HedgeBudget, MinimumAllowsHedgesWithoutRequests) {
  HedgeBudget budget(settings(0, 1000, 2));
  EXPECT_TRUE(budget.tryAcquireHedge(0));
  EXPECT_TRUE(budget.tryAcquireHedge(0));
  EXPECT_FALSE(budget.tryAcquireHedge(0));
}

TEST(HedgeBudget, RatioGrowsWithRequests) {
  HedgeBudget budget(settings(0.5, 1000, 0));
  budget.recordRequest(0);
  EXPECT_FALSE(budget.tryAcquireHedge(0));  // 0.5 allowed
  budget.recordRequest(0);
  EXPECT_TRUE(budget.tryAcquireHedge(0));  // 1 allowed
  EXPECT_FALSE(budget.tryAcquireHedge(0));
}

TEST(HedgeBudget, ExtraAttemptsLeaveLessRoom) {
  HedgeBudget budget(settings(0, 1000, 1));
  budget.recordExtraAttempt(0);
  EXPECT_FALSE(budget.tryAcquireHedge(0));
}

TEST(HedgeBudget, WindowExpiresSpending) {
  HedgeBudget budget(settings(0, 1000, 1));
  EXPECT_TRUE(budget.tryAcquireHedge(0));
  EXPECT_FALSE(budget.tryAcquireHedge(999));
  EXPECT_TRUE(budget.tryAcquireHedge(1000));
}

}  // namespace
}  // namespace hfchain::plugins::fallback
