// The budget link's ledger: windows, reservations, concurrency and the state file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/budget/ledger.cc"

namespace hfchain::plugins::budget {
namespace {

namespace fs = std::filesystem;

// 2025-12-04T00:00:00Z, the start of a UTC day.
constexpr int64_t kDay = 1764806400;

BudgetRule rule(std::string name, Scope scope, int64_t limit, int64_t window = 86400) {
  return BudgetRule{std::move(name), scope, limit, window};
}

Reservation reserveOk(Ledger& ledger, std::string_view key, std::string_view tenant, int64_t tokens,
                      int64_t now) {
  auto result = ledger.reserve(key, tenant, tokens, now);
  if (auto* rejection = std::get_if<Rejection>(&result)) {
    ADD_FAILURE() << rejection->describe();
    return {};
  }
  return std::get<Reservation>(result);
}

// A fresh folder per test, removed afterwards.
class LedgerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() /
              ("hfchain-ledger-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
    state_ = (folder_ / "budget-state.json").string();
  }
  void TearDown() override { fs::remove_all(folder_); }

  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void write(const std::string& text) { std::ofstream(state_) << text; }

  fs::path folder_;
  std::string state_;
};

TEST(Ledger, ReserveWithinLimitCountsAsUsed) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, "");
  reserveOk(ledger, "k1", "", 60, kDay);
  EXPECT_EQ(ledger.used("daily", "k1", kDay), 60);
  EXPECT_EQ(ledger.used("daily", "k2", kDay), 0);
  EXPECT_EQ(ledger.used("no-such-rule", "k1", kDay), 0);
}

TEST(Ledger, RejectionNamesRuleAndCounts) {
  Ledger ledger({rule("daily-per-key", Scope::kKey, 10000)}, "");
  Reservation first = reserveOk(ledger, "3f2a", "", 9000, kDay);
  reserveOk(ledger, "3f2a", "", 400, kDay);
  ledger.settle(first, 9800, kDay);
  // 3h12m before the end of the day.
  const int64_t now = kDay + 86400 - (3 * 3600 + 12 * 60);
  auto result = ledger.reserve("3f2a", "", 500, now);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  const Rejection& rejection = std::get<Rejection>(result);
  EXPECT_EQ(rejection.rule, "daily-per-key");
  EXPECT_EQ(rejection.scope_value, "3f2a");
  EXPECT_EQ(rejection.used, 9800);
  EXPECT_EQ(rejection.reserved, 400);
  EXPECT_EQ(rejection.requested, 500);
  EXPECT_EQ(rejection.limit, 10000);
  EXPECT_EQ(rejection.resets_in_seconds, 3 * 3600 + 12 * 60);
  EXPECT_EQ(rejection.describe(),
            "budget \"daily-per-key\" for key 3f2a: 9,800 used + 400 reserved + 500 requested "
            "exceeds 10,000 tokens; resets in 3h12m");
}

TEST(Ledger, DescribeNamesScopes) {
  Rejection global{"all", Scope::kGlobal, "", 1, 0, 5, 2, 45};
  EXPECT_EQ(global.describe(),
            "budget \"all\": 1 used + 0 reserved + 5 requested exceeds 2 tokens; resets in 45s");
  Rejection tenant{"t", Scope::kTenant, "acme", 0, 0, 1234567, 1000000, 2 * 86400 + 3600};
  EXPECT_EQ(tenant.describe(),
            "budget \"t\" for tenant acme: 0 used + 0 reserved + 1,234,567 requested exceeds "
            "1,000,000 tokens; resets in 2d1h");
  Rejection keyless{"k", Scope::kKey, "", 0, 0, 3, 2, 65};
  EXPECT_NE(keyless.describe().find("for requests without a key"), std::string::npos);
  EXPECT_NE(keyless.describe().find("resets in 1m5s"), std::string::npos);
}

TEST(Ledger, WindowRollsOver) {
  Ledger ledger({rule("hourly", Scope::kGlobal, 100, 3600)}, "");
  Reservation full = reserveOk(ledger, "", "", 100, kDay + 10);
  ledger.settle(full, 100, kDay + 20);
  EXPECT_TRUE(std::holds_alternative<Rejection>(ledger.reserve("", "", 1, kDay + 3599)));
  reserveOk(ledger, "", "", 100, kDay + 3600);
  EXPECT_EQ(ledger.used("hourly", "", kDay + 3600), 100);
  EXPECT_EQ(ledger.used("hourly", "", kDay + 3599), 100);
}

TEST(Ledger, ReservationIsAllOrNothing) {
  Ledger ledger({rule("per-key", Scope::kKey, 100), rule("per-tenant", Scope::kTenant, 1000),
                 rule("global", Scope::kGlobal, 150)},
                "");
  reserveOk(ledger, "a", "acme", 100, kDay);
  auto result = ledger.reserve("b", "acme", 60, kDay);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).rule, "global");
  // The rules that would have accepted hold nothing for the rejected request.
  EXPECT_EQ(ledger.used("per-key", "b", kDay), 0);
  EXPECT_EQ(ledger.used("per-tenant", "acme", kDay), 100);
  EXPECT_EQ(ledger.used("global", "", kDay), 100);
}

TEST(Ledger, FirstFailingRuleIsReported) {
  Ledger ledger({rule("per-key", Scope::kKey, 10), rule("global", Scope::kGlobal, 10)}, "");
  auto result = ledger.reserve("a", "", 11, kDay);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).rule, "per-key");
}

TEST(Ledger, SettleBelowReserveReleasesRest) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", 80, kDay);
  ledger.settle(reservation, 30, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), 30);
  reserveOk(ledger, "k", "", 70, kDay);
}

TEST(Ledger, SettleAboveReserveChargesActual) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", 50, kDay);
  ledger.settle(reservation, 120, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), 120);
  EXPECT_TRUE(std::holds_alternative<Rejection>(ledger.reserve("k", "", 1, kDay + 1)));
}

TEST(Ledger, SettleIsIdempotent) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", 50, kDay);
  ledger.settle(reservation, 40, kDay);
  ledger.settle(reservation, 40, kDay);
  ledger.settle(reservation, 90, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), 40);
}

TEST(Ledger, SettleFromOtherLedgerIsIgnored) {
  Ledger first({rule("daily", Scope::kKey, 100)}, "");
  Ledger second({rule("daily", Scope::kKey, 100)}, "");
  Reservation reservation = reserveOk(first, "k", "", 50, kDay);
  second.settle(reservation, 40, kDay);
  EXPECT_EQ(second.used("daily", "k", kDay), 0);
  EXPECT_EQ(first.used("daily", "k", kDay), 50);
}

TEST(Ledger, SettleAfterRolloverChargesOriginalWindow) {
  Ledger ledger({rule("minute", Scope::kKey, 100, 60)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", 50, kDay + 59);
  ledger.settle(reservation, 70, kDay + 61);
  EXPECT_EQ(ledger.used("minute", "k", kDay + 30), 70);
  EXPECT_EQ(ledger.used("minute", "k", kDay + 61), 0);
}

TEST(Ledger, SettleAfterWindowDroppedChargesNothing) {
  Ledger ledger({rule("minute", Scope::kKey, 100, 60)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", 50, kDay);
  // Any reserve sweeps once a minute; by now the window ended more than a window ago.
  reserveOk(ledger, "other", "", 1, kDay + 200);
  ledger.settle(reservation, 70, kDay + 200);
  EXPECT_EQ(ledger.used("minute", "k", kDay), 0);
  EXPECT_EQ(ledger.used("minute", "k", kDay + 200), 0);
}

TEST(Ledger, MissingKeyAndTenantShareOneBucket) {
  Ledger ledger({rule("per-key", Scope::kKey, 100), rule("per-tenant", Scope::kTenant, 100)}, "");
  reserveOk(ledger, "", "", 60, kDay);
  auto result = ledger.reserve("", "", 60, kDay);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).scope_value, "");
  EXPECT_EQ(ledger.used("per-key", "", kDay), 60);
  EXPECT_EQ(ledger.used("per-tenant", "", kDay), 60);
}

TEST(Ledger, NegativeCountsAsZero) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, "");
  Reservation reservation = reserveOk(ledger, "k", "", -5, kDay);
  EXPECT_EQ(reservation.tokens, 0);
  ledger.settle(reservation, -7, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), 0);
}

TEST(Ledger, SumsSaturateInsteadOfWrapping) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  Ledger ledger({rule("daily", Scope::kKey, 1'000'000'000'000)}, "");
  // A request that reserved little but reports a huge use.
  Reservation small = reserveOk(ledger, "k", "", 10, kDay);
  ledger.settle(small, kMax, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), kMax);
  Reservation first = reserveOk(ledger, "j", "", 0, kDay);
  Reservation second = reserveOk(ledger, "j", "", 0, kDay);
  ledger.settle(first, kMax, kDay);
  ledger.settle(second, kMax, kDay);
  EXPECT_EQ(ledger.used("daily", "j", kDay), kMax);
  // A saturated count rejects every further request...
  auto result = ledger.reserve("k", "", 1, kDay);
  ASSERT_TRUE(std::holds_alternative<Rejection>(result));
  EXPECT_EQ(std::get<Rejection>(result).used, kMax);
  // ...and a huge request on a used bucket is rejected instead of wrapping below the limit.
  Reservation some = reserveOk(ledger, "m", "", 100, kDay);
  EXPECT_TRUE(std::holds_alternative<Rejection>(ledger.reserve("m", "", kMax, kDay)));
  EXPECT_TRUE(std::holds_alternative<Rejection>(ledger.reserve("m", "", kMax - 50, kDay)));
  ledger.settle(some, 100, kDay);
  EXPECT_EQ(ledger.used("daily", "m", kDay), 100);
}

TEST_F(LedgerFileTest, SaturatedCountIsWrittenAtBound) {
  {
    Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
    ASSERT_EQ(ledger.load(kDay), "");
    ledger.settle(reserveOk(ledger, "k", "", 10, kDay), std::numeric_limits<int64_t>::max(), kDay);
    ASSERT_EQ(ledger.flush(), "");
  }
  EXPECT_EQ(nlohmann::json::parse(read(state_))["rules"]["daily"]["windows"][0]["used"]["k"],
            kMaxStateTokens);
  Ledger restarted({rule("daily", Scope::kKey, 100)}, state_);
  ASSERT_EQ(restarted.load(kDay + 1), "");
  EXPECT_TRUE(std::holds_alternative<Rejection>(restarted.reserve("k", "", 1, kDay + 1)));
}

TEST(Ledger, SweepDropsIdleKeys) {
  Ledger ledger({rule("minute", Scope::kKey, 100, 60)}, "");
  for (int i = 0; i < 1000; ++i) {
    Reservation reservation = reserveOk(ledger, "key-" + std::to_string(i), "", 10, kDay);
    ledger.settle(reservation, 10, kDay);
  }
  EXPECT_EQ(ledger.bucketCount(), 1000u);
  reserveOk(ledger, "late", "", 10, kDay + 120);
  EXPECT_EQ(ledger.bucketCount(), 1u);
}

TEST(Ledger, UnsettledReservationIsDroppedEventually) {
  Ledger ledger({rule("minute", Scope::kKey, 100, 60)}, "");
  reserveOk(ledger, "k", "", 10, kDay);
  reserveOk(ledger, "x", "", 10, kDay + 60);
  // The ended window is kept while a reservation made in it is in flight...
  EXPECT_EQ(ledger.bucketCount(), 2u);
  reserveOk(ledger, "y", "", 10, kDay + 120);
  // ...for one more window length at most.
  EXPECT_EQ(ledger.bucketCount(), 2u);
  EXPECT_EQ(ledger.used("minute", "k", kDay), 0);
}

// Runs `threads` threads that each reserve `reserve` tokens and settle a random amount in
// [0, max_actual]; returns the sum of what the threads settled.
int64_t hammer(Ledger& ledger, int threads, int iterations, int64_t reserve, int64_t max_actual) {
  std::atomic<int64_t> settled{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::uniform_int_distribution<int64_t> actual(0, max_actual);
      for (int i = 0; i < iterations; ++i) {
        auto result = ledger.reserve("k", "tenant", reserve, kDay);
        if (auto* reservation = std::get_if<Reservation>(&result)) {
          int64_t tokens = actual(random);
          std::this_thread::yield();
          ledger.settle(*reservation, tokens, kDay);
          settled += tokens;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  return settled.load();
}

TEST(Ledger, ConcurrentSpendStaysWithinLimit) {
  Ledger ledger({rule("per-key", Scope::kKey, 5000), rule("global", Scope::kGlobal, 4000)}, "");
  int64_t settled = hammer(ledger, 8, 5000, 10, 10);
  EXPECT_EQ(ledger.used("global", "", kDay), settled);
  EXPECT_EQ(ledger.used("per-key", "k", kDay), settled);
  EXPECT_LE(settled, 4000);
  // The budget was actually spent, not rejected throughout.
  EXPECT_GT(settled, 4000 / 2);
}

TEST(Ledger, ConcurrentOverrunsBoundedByInFlight) {
  constexpr int kThreads = 8;
  constexpr int64_t kReserve = 10, kMaxActual = 25, kLimit = 1000;
  Ledger ledger({rule("global", Scope::kGlobal, kLimit)}, "");
  int64_t settled = hammer(ledger, kThreads, 5000, kReserve, kMaxActual);
  EXPECT_EQ(ledger.used("global", "", kDay), settled);
  // A reservation is granted only while settled + reserved + requested <= limit, so only the
  // overruns of the reservations in flight, at most one per thread, can pass the limit.
  EXPECT_LE(settled, kLimit + kThreads * (kMaxActual - kReserve));
  EXPECT_GT(settled, kLimit / 2);
}

TEST_F(LedgerFileTest, MissingFileIsNotAnError) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  EXPECT_EQ(ledger.load(kDay), "");
  EXPECT_EQ(ledger.used("daily", "k", kDay), 0);
}

TEST_F(LedgerFileTest, StateSurvivesRestart) {
  {
    Ledger ledger({rule("daily", Scope::kKey, 100), rule("global", Scope::kGlobal, 1000)}, state_);
    ASSERT_EQ(ledger.load(kDay), "");
    Reservation settled = reserveOk(ledger, "k", "", 30, kDay);
    ledger.settle(settled, 25, kDay);
    // An unsettled reservation is not written.
    reserveOk(ledger, "k", "", 40, kDay);
    ASSERT_EQ(ledger.flush(), "");
  }
  nlohmann::json state = nlohmann::json::parse(read(state_));
  EXPECT_EQ(state["version"], 1);
  EXPECT_EQ(state["rules"]["daily"]["windows"][0]["used"]["k"], 25);

  Ledger restarted({rule("daily", Scope::kKey, 100), rule("global", Scope::kGlobal, 1000)}, state_);
  ASSERT_EQ(restarted.load(kDay + 100), "");
  EXPECT_EQ(restarted.used("daily", "k", kDay + 100), 25);
  EXPECT_EQ(restarted.used("global", "", kDay + 100), 25);
  EXPECT_TRUE(std::holds_alternative<Rejection>(restarted.reserve("k", "", 76, kDay + 100)));
}

TEST_F(LedgerFileTest, DestructorWritesState) {
  {
    Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
    Reservation reservation = reserveOk(ledger, "k", "", 30, kDay);
    ledger.settle(reservation, 30, kDay);
    // A second settle in the same second does not write again.
    Reservation second = reserveOk(ledger, "k", "", 5, kDay);
    ledger.settle(second, 5, kDay);
    EXPECT_EQ(nlohmann::json::parse(read(state_))["rules"]["daily"]["windows"][0]["used"]["k"], 30);
  }
  EXPECT_EQ(nlohmann::json::parse(read(state_))["rules"]["daily"]["windows"][0]["used"]["k"], 35);
}

TEST_F(LedgerFileTest, SettleWritesAtMostOncePerSecond) {
  Ledger ledger({rule("daily", Scope::kKey, 1000)}, state_);
  auto usedOnDisk = [&] {
    return nlohmann::json::parse(read(state_))["rules"]["daily"]["windows"][0]["used"]["k"];
  };
  ledger.settle(reserveOk(ledger, "k", "", 1, kDay), 1, kDay);
  EXPECT_EQ(usedOnDisk(), 1);
  ledger.settle(reserveOk(ledger, "k", "", 1, kDay), 1, kDay);
  EXPECT_EQ(usedOnDisk(), 1);
  ledger.settle(reserveOk(ledger, "k", "", 1, kDay + 1), 1, kDay + 1);
  EXPECT_EQ(usedOnDisk(), 3);
  EXPECT_EQ(ledger.lastFlushError(), "");
}

TEST_F(LedgerFileTest, LoadSkipsRemovedRulesAndEndedWindows) {
  write(R"({"version":1,"rules":{
    "daily":{"scope":"key","window_seconds":86400,"windows":[
      {"start":)" +
        std::to_string(kDay - 86400) + R"(,"used":{"k":50}},
      {"start":)" +
        std::to_string(kDay) + R"(,"used":{"k":20}}]},
    "hourly":{"scope":"key","window_seconds":3600,"windows":[
      {"start":)" +
        std::to_string(kDay) + R"(,"used":{"k":7}}]},
    "renamed":{"scope":"key","window_seconds":86400,"windows":[
      {"start":)" +
        std::to_string(kDay) + R"(,"used":{"k":9}}]}}})");
  // "hourly" is now configured with another window length, so its count does not carry over.
  Ledger ledger({rule("daily", Scope::kKey, 100), rule("hourly", Scope::kKey, 100, 60)}, state_);
  ASSERT_EQ(ledger.load(kDay + 10), "");
  EXPECT_EQ(ledger.used("daily", "k", kDay + 10), 20);
  EXPECT_EQ(ledger.used("daily", "k", kDay - 10), 0);
  EXPECT_EQ(ledger.used("hourly", "k", kDay + 10), 0);
  EXPECT_EQ(ledger.bucketCount(), 1u);
}

TEST_F(LedgerFileTest, TruncatedFileIsKeptUntilFirstWrite) {
  const std::string truncated = R"({"version":1,"rules":{"daily":{"scope":"key","wind)";
  write(truncated);
  {
    Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
    std::string error = ledger.load(kDay);
    EXPECT_NE(error.find(state_ + " is not valid JSON"), std::string::npos) << error;
    EXPECT_NE(error.find("Budgets start empty"), std::string::npos) << error;
    EXPECT_NE(error.find("moves it to " + state_ + ".corrupt"), std::string::npos) << error;
    EXPECT_EQ(ledger.used("daily", "k", kDay), 0);
    // A ledger that never settles, as in `hfchain check`, changes no file.
  }
  EXPECT_EQ(read(state_), truncated);
  EXPECT_FALSE(fs::exists(state_ + ".corrupt"));

  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  EXPECT_NE(ledger.load(kDay), "");
  EXPECT_EQ(read(state_), truncated);
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay), 5, kDay);
  ASSERT_EQ(ledger.flush(), "");
  EXPECT_EQ(read(state_ + ".corrupt"), truncated);
  EXPECT_TRUE(nlohmann::json::accept(read(state_)));
}

TEST_F(LedgerFileTest, NotParsableFileIsNeverTouchedByLoad) {
  // For example the config file itself named as state_file.
  const std::string yaml = "targets:\n  hf: {protocol: tgi}\nchain: []\n";
  write(yaml);
  {
    Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
    EXPECT_NE(ledger.load(kDay), "");
    EXPECT_EQ(ledger.flush(), "");
  }
  EXPECT_EQ(read(state_), yaml);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(folder_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(LedgerFileTest, DirectoryIsAnErrorAndNeverWritten) {
  const fs::path directory = folder_ / "state-dir";
  fs::create_directories(directory);
  std::ofstream(directory / "inside.txt") << "keep";
  Ledger ledger({rule("daily", Scope::kKey, 100)}, directory.string());
  std::string error = ledger.load(kDay);
  EXPECT_NE(error.find(directory.string() + " is a directory"), std::string::npos) << error;
  EXPECT_NE(error.find("set state_file to the path of a file"), std::string::npos) << error;
  EXPECT_TRUE(fs::is_directory(directory));
  EXPECT_FALSE(fs::exists(directory.string() + ".corrupt"));

  // Budgets still count in memory, but no write replaces or moves the directory.
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay), 5, kDay);
  EXPECT_EQ(ledger.used("daily", "k", kDay), 5);
  EXPECT_NE(ledger.lastFlushError().find("is a directory"), std::string::npos)
      << ledger.lastFlushError();
  EXPECT_NE(ledger.flush().find("is a directory"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(directory));
  EXPECT_EQ(read((directory / "inside.txt").string()), "keep");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(folder_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST_F(LedgerFileTest, FifoIsNotARegularFile) {
  ASSERT_EQ(::mkfifo(state_.c_str(), 0600), 0);
  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  // Opening a FIFO for reading would block until a writer comes, so load() must not.
  std::string error = ledger.load(kDay);
  EXPECT_NE(error.find(state_ + " is not a regular file"), std::string::npos) << error;
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay), 5, kDay);
  EXPECT_NE(ledger.flush().find("is not a regular file"), std::string::npos);
  EXPECT_TRUE(fs::is_fifo(state_));
}

TEST_F(LedgerFileTest, EarlierBackupsAreNotOverwritten) {
  std::ofstream(state_ + ".corrupt") << "first";
  std::ofstream(state_ + ".corrupt.1") << "second";
  write("third");
  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  EXPECT_NE(ledger.load(kDay), "");
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay), 5, kDay);
  ASSERT_EQ(ledger.flush(), "");
  EXPECT_EQ(read(state_ + ".corrupt"), "first");
  EXPECT_EQ(read(state_ + ".corrupt.1"), "second");
  EXPECT_EQ(read(state_ + ".corrupt.2"), "third");
  EXPECT_TRUE(nlohmann::json::accept(read(state_)));
  // Only the first write moves the file aside; later writes replace the new state file.
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay + 1), 5, kDay + 1);
  ASSERT_EQ(ledger.flush(), "");
  EXPECT_FALSE(fs::exists(state_ + ".corrupt.3"));
}

TEST_F(LedgerFileTest, WrongShapeIsRejected) {
  struct Case {
    std::string text;
    std::string expected;
  };
  auto withCount = [](const std::string& count) {
    return R"({"version":1,"rules":{"daily":{"scope":"key","window_seconds":86400,"windows":[)"
           R"({"start":1,"used":{"k":)" +
           count + "}}]}}}";
  };
  const std::vector<Case> cases = {
      {R"({"version":2,"rules":{}})", "has version 2; this build reads version 1 only"},
      {R"([1,2])", "has no \"version\""},
      {R"({"version":1})", "has no \"rules\" object"},
      {R"({"version":1,"rules":{"daily":{"scope":"key"}}})", "invalid rule \"daily\""},
      {withCount("-3"), "invalid count -3 for \"k\""},
      {withCount("9223372036854775807"), "invalid count 9223372036854775807 for \"k\""},
      {withCount("18446744073709551615"), "invalid count 18446744073709551615 for \"k\""},
      {withCount("1000000000000001"), "from 0 to 1,000,000,000,000,000"},
      {withCount("1e20"), "invalid count 1e+20 for \"k\""},
  };
  for (const Case& c : cases) {
    write(c.text);
    Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
    std::string error = ledger.load(kDay);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.text << "\n" << error;
    EXPECT_NE(error.find("Budgets start empty"), std::string::npos) << c.text << "\n" << error;
    EXPECT_EQ(ledger.used("daily", "k", kDay), 0) << c.text;
    // load() leaves the file where it is; the first write would move it aside.
    EXPECT_EQ(read(state_), c.text);
    EXPECT_FALSE(fs::exists(state_ + ".corrupt")) << c.text;
  }
}

TEST_F(LedgerFileTest, CountAtBoundIsLoaded) {
  write(R"({"version":1,"rules":{"daily":{"scope":"key","window_seconds":86400,"windows":[)"
        R"({"start":)" +
        std::to_string(kDay) + R"(,"used":{"k":1000000000000000}}]}}})");
  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  ASSERT_EQ(ledger.load(kDay), "");
  EXPECT_EQ(ledger.used("daily", "k", kDay), kMaxStateTokens);
  EXPECT_TRUE(std::holds_alternative<Rejection>(ledger.reserve("k", "", 1, kDay)));
}

TEST_F(LedgerFileTest, FutureAndUnalignedWindowsAreDropped) {
  write(R"({"version":1,"rules":{"daily":{"scope":"key","window_seconds":86400,"windows":[)"
        R"({"start":)" +
        std::to_string(kDay) + R"(,"used":{"k":20}},)" + R"({"start":)" +
        std::to_string(kDay + 86400) + R"(,"used":{"k":30}},)" + R"({"start":)" +
        std::to_string(kDay + 5) + R"(,"used":{"j":40}},)" +
        R"({"start":18446744073709551615,"used":{"j":50}}]}}})");
  Ledger ledger({rule("daily", Scope::kKey, 100)}, state_);
  std::string error = ledger.load(kDay + 10);
  EXPECT_NE(error.find("dropped 3 windows"), std::string::npos) << error;
  EXPECT_NE(error.find("window " + std::to_string(kDay + 86400) +
                       " of rule \"daily\" starts in the future"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("window 18446744073709551615 of rule \"daily\" starts in the future"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("window " + std::to_string(kDay + 5) +
                       " of rule \"daily\" is not a multiple of window_seconds 86400"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("loaded the other counts"), std::string::npos) << error;
  EXPECT_EQ(ledger.used("daily", "k", kDay + 10), 20);
  EXPECT_EQ(ledger.used("daily", "j", kDay + 10), 0);
  EXPECT_EQ(ledger.used("daily", "k", kDay + 86400), 0);
  EXPECT_EQ(ledger.bucketCount(), 1u);
}

TEST_F(LedgerFileTest, WriteErrorNamesFile) {
  Ledger ledger({rule("daily", Scope::kKey, 100)}, (folder_ / "missing" / "state.json").string());
  ledger.settle(reserveOk(ledger, "k", "", 5, kDay), 5, kDay);
  EXPECT_NE(ledger.lastFlushError().find("missing/state.json"), std::string::npos)
      << ledger.lastFlushError();
  std::string error = ledger.flush();
  EXPECT_NE(error.find("cannot write budget state file"), std::string::npos) << error;
  EXPECT_NE(error.find("check that the folder exists"), std::string::npos) << error;
}

TEST_F(LedgerFileTest, StateFileIsAlwaysWhole) {
  Ledger ledger({rule("per-key", Scope::kKey, 1'000'000'000)}, state_);
  ledger.settle(reserveOk(ledger, "k0", "", 1, kDay), 1, kDay);
  ASSERT_EQ(ledger.flush(), "");
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 150; ++i) {
      // Many keys make each file large enough that a torn write would be visible.
      for (int k = 0; k < 20; ++k)
        ledger.settle(reserveOk(ledger, "key-" + std::to_string(i * 20 + k), "", 1, kDay), 1, kDay);
      EXPECT_EQ(ledger.flush(), "");
    }
    done = true;
  });
  int reads = 0;
  while (!done) {
    std::string text = read(state_);
    ASSERT_TRUE(nlohmann::json::accept(text))
        << "partial state file after " << reads << " reads: " << text.size() << " bytes";
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0);
  // No temporary files are left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(folder_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace hfchain::plugins::budget
