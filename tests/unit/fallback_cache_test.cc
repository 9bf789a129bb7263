// The fallback link's answer cache.
#include <gtest/gtest.h>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/fallback/response_cache.cc"

namespace hfchain::plugins::fallback {
namespace {

CachedAnswer answer(const std::string& text) { return CachedAnswer{{text}, "stop"}; }

TEST(ResponseCache, HitReturnsStoredAnswer) {
  ResponseCache cache(10, 1000);
  cache.store("k", CachedAnswer{{"a", "b"}, "length"}, 0);
  std::optional<CachedAnswer> hit = cache.find("k", 10);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tokens, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(hit->finish_reason, "length");
  EXPECT_FALSE(cache.find("other", 10));
}

TEST(ResponseCache, EntryExpiresAtTtl) {
  ResponseCache cache(10, 1000);
  cache.store("k", answer("x"), 0);
  EXPECT_TRUE(cache.find("k", 999));
  EXPECT_FALSE(cache.find("k", 1000));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ResponseCache, EvictsLeastRecentlyUsed) {
  ResponseCache cache(2, 1000);
  cache.store("a", answer("1"), 0);
  cache.store("b", answer("2"), 0);
  EXPECT_TRUE(cache.find("a", 1));  // a is now more recent than b
  cache.store("c", answer("3"), 2);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.find("a", 3));
  EXPECT_FALSE(cache.find("b", 3));
  EXPECT_TRUE(cache.find("c", 3));
}

TEST(ResponseCache, StoreReplacesAndRenews) {
  ResponseCache cache(2, 1000);
  cache.store("a", answer("old"), 0);
  cache.store("a", answer("new"), 900);
  std::optional<CachedAnswer> hit = cache.find("a", 1500);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tokens.front(), "new");
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace hfchain::plugins::fallback
