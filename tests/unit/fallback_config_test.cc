// Settings validation of the fallback link.
#include <gtest/gtest.h>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/fallback/fallback_config.cc"

namespace hfchain::plugins::fallback {
namespace {

using nlohmann::json;

std::string rejection(const json& settings) {
  std::string error;
  std::unique_ptr<FallbackConfig> config = parseFallbackConfig(settings, error);
  EXPECT_EQ(config, nullptr) << settings.dump();
  return error;
}

TEST(FallbackConfig, ParsesTiersOfEveryKind) {
  json settings = json::parse(R"({
    "on_broken_stream": "resume",
    "health": {"latency_weight": 2, "error_weight": 3, "alpha": 0.5},
    "hedge_budget": {"ratio": 0.2, "window_ms": 5000, "min_per_window": 2},
    "tiers": [
      {"name": "main", "targets": ["a", "b"], "hedge": {"after_ms": 800},
       "on": {"status": ["5xx", 429, "404"], "class": ["timeout"], "timeout_ms": 20000},
       "links": [{"link": "auth"}]},
      {"name": "light", "targets": "c", "model": "small"},
      {"name": "cache", "cache": {"max_entries": 5, "ttl_ms": 1000}},
      {"name": "rest"},
      {"name": "last", "local": {"answer": "sorry"}}
    ]})");
  std::string error;
  std::unique_ptr<FallbackConfig> config = parseFallbackConfig(settings, error);
  ASSERT_NE(config, nullptr) << error;
  ASSERT_EQ(config->tiers.size(), 5u);
  EXPECT_EQ(config->on_broken_stream, BrokenStreamPolicy::kResume);
  EXPECT_EQ(config->health.latency_weight, 2);
  EXPECT_EQ(config->health.alpha, 0.5);
  EXPECT_EQ(config->hedge_budget.min_per_window, 2);

  const TierConfig& main = config->tiers[0];
  EXPECT_EQ(main.kind, TierKind::kTargets);
  EXPECT_EQ(main.targets, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(main.hedge_after_ms, 800);
  EXPECT_EQ(main.on.timeout_ms, 20000);
  EXPECT_TRUE(main.links.is_array());
  EXPECT_TRUE(main.on.matches(503, HFC_ERROR_UPSTREAM_5XX));
  EXPECT_TRUE(main.on.matches(429, HFC_ERROR_RATE_LIMITED));
  EXPECT_TRUE(main.on.matches(404, HFC_ERROR_UPSTREAM_NOT_FOUND));
  EXPECT_FALSE(main.on.matches(400, HFC_ERROR_UPSTREAM_VALIDATION));
  EXPECT_TRUE(main.on.matches(0, HFC_ERROR_TIMEOUT));
  EXPECT_FALSE(main.on.matches(0, HFC_ERROR_CONNECT_FAILED));

  EXPECT_EQ(config->tiers[1].targets, (std::vector<std::string>{"c"}));
  EXPECT_EQ(config->tiers[1].model, "small");
  EXPECT_EQ(config->tiers[2].kind, TierKind::kCache);
  EXPECT_EQ(config->tiers[2].cache.max_entries, 5u);
  EXPECT_EQ(config->tiers[2].cache.ttl_ms, 1000);
  EXPECT_EQ(config->tiers[3].kind, TierKind::kPassThrough);
  EXPECT_EQ(config->tiers[4].kind, TierKind::kLocal);
  EXPECT_EQ(config->tiers[4].local_answer, "sorry");
}

TEST(FallbackConfig, DefaultTriggers) {
  Triggers on = defaultTriggers();
  EXPECT_TRUE(on.matches(500, HFC_ERROR_UPSTREAM_5XX));
  EXPECT_TRUE(on.matches(429, HFC_ERROR_RATE_LIMITED));
  EXPECT_TRUE(on.matches(0, HFC_ERROR_CIRCUIT_OPEN));
  EXPECT_TRUE(on.matches(0, HFC_ERROR_CONNECT_FAILED));
  EXPECT_FALSE(on.matches(400, HFC_ERROR_UPSTREAM_VALIDATION));
  EXPECT_FALSE(on.matches(401, HFC_ERROR_UPSTREAM_AUTH));
  EXPECT_FALSE(on.matches(0, HFC_ERROR_CONTEXT_OVERFLOW));
}

TEST(FallbackConfig, RejectsBadSettings) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "tiers is missing"},
      {R"({"tiers": []})", "tiers is []"},
      {R"({"tiers": [{"name": "a"}], "extra": 1})", "unknown setting 'extra'"},
      {R"({"tiers": [{"targets": ["a"]}]})", "tiers[0].name is missing"},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "color": 1}]})",
       "unknown setting 'tiers[0].color'"},
      {R"({"tiers": [{"name": "a", "targets": []}]})", "tiers[0].targets is empty"},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "on": {"status": ["6xx"]}}]})",
       "tiers[0].on.status has \"6xx\""},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "on": {"class": ["slow"]}}]})",
       "tiers[0].on.class has \"slow\""},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "on": {"timeout_ms": 0}}]})",
       "tiers[0].on.timeout_ms is 0"},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "hedge": {"after_ms": 5}}]})",
       "at least two targets"},
      {R"({"tiers": [{"name": "a", "targets": ["x", "y"], "hedge": {}}]})",
       "tiers[0].hedge.after_ms is missing"},
      {R"({"tiers": [{"name": "a"}, {"name": "a"}]})", "tiers[1].name 'a' is used"},
      {R"({"tiers": [{"name": "a", "targets": ["x"], "cache": {}}]})", "more than one of"},
      {R"({"tiers": [{"name": "a", "cache": {}}, {"name": "b", "cache": {}}]})",
       "only one cache tier"},
      {R"({"tiers": [{"name": "a", "cache": {"ttl_ms": -1}}]})", "tiers[0].cache.ttl_ms is -1"},
      {R"({"tiers": [{"name": "a", "cache": {}, "model": "m"}]})", "tiers[0].model is set"},
      {R"({"tiers": [{"name": "a", "local": {}}]})", "tiers[0].local.answer is missing"},
      {R"({"tiers": [{"name": "a", "links": {"link": "x"}}]})", "tiers[0].links is"},
      {R"({"tiers": [{"name": "a"}], "on_broken_stream": "retry"})",
       "on_broken_stream is \"retry\""},
      {R"({"tiers": [{"name": "a"}], "health": {"alpha": 0}})", "health.alpha is 0"},
      {R"({"tiers": [{"name": "a"}], "hedge_budget": {"ratio": -1}})", "hedge_budget.ratio is -1"},
      {R"({"tiers": [{"name": "a"}], "resume": {"min_overlap_chars": 0}})",
       "resume.min_overlap_chars is 0"},
  };
  for (const auto& [text, expected] : cases) {
    std::string error = rejection(json::parse(text));
    EXPECT_NE(error.find(expected), std::string::npos)
        << "settings " << text << "\nerror: " << error << "\nexpected to contain: " << expected;
  }
}

}  // namespace
}  // namespace hfchain::plugins::fallback
