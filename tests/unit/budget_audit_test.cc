// The budget link's audit log: line format, cost rule and concurrent appends.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

// The plugin is a MODULE library that tests cannot link, so the sources under test are
// compiled into this test. price_table.cc is part of budget_prices_test.cc already.
#include "../../plugins/budget/audit_log.cc"

namespace hfchain::plugins::budget {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

AuditRecord sampleRecord() {
  AuditRecord record;
  record.time_unix_ms = 1796407200123;  // 2026-12-04T18:00:00.123Z
  record.request_id = "req-1";
  record.key_id = "3f2a9c";
  record.tenant = "acme";
  record.target = "hf";
  record.model = "meta-llama/Llama-3.1-8B-Instruct";
  record.input_tokens_estimated = 100;
  record.input_count_method = "tokenizer";
  record.input_count_note = "";
  record.input_tokens = 110;
  record.output_tokens = 20;
  record.cost_usd = 0.000034;
  return record;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("hfchain-audit-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl"))
                .string();
    fs::remove(path_);
  }
  void TearDown() override { fs::remove(path_); }

  std::unique_ptr<AuditLog> open() {
    auto result = AuditLog::open(path_);
    if (auto* error = std::get_if<std::string>(&result)) {
      ADD_FAILURE() << *error;
      return nullptr;
    }
    return std::move(std::get<std::unique_ptr<AuditLog>>(result));
  }
  std::vector<std::string> lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::string path_;
};

TEST(AuditLine, HasEveryFieldInOrder) {
  std::string line = formatAuditLine(sampleRecord());
  EXPECT_EQ(line,
            R"({"time":"2026-12-04T18:00:00.123Z","request_id":"req-1","key":"3f2a9c",)"
            R"("tenant":"acme","target":"hf","model":"meta-llama/Llama-3.1-8B-Instruct",)"
            R"("input_tokens_estimated":100,"input_count_method":"tokenizer",)"
            R"("input_count_note":"","input_tokens":110,"output_tokens":20,"overrun_ratio":1.1,)"
            R"("cost_usd":3.4e-05,"outcome":"ok"})"
            "\n");
}

TEST(AuditLine, MissingUsageIsNull) {
  AuditRecord record = sampleRecord();
  record.input_tokens.reset();
  record.output_tokens.reset();
  record.cost_usd.reset();
  json line = json::parse(formatAuditLine(record));
  EXPECT_TRUE(line["input_tokens"].is_null());
  EXPECT_TRUE(line["output_tokens"].is_null());
  EXPECT_TRUE(line["overrun_ratio"].is_null());
  EXPECT_TRUE(line["cost_usd"].is_null());
}

TEST(AuditLine, ZeroEstimateGivesNullRatio) {
  AuditRecord record = sampleRecord();
  record.input_tokens_estimated = 0;
  EXPECT_TRUE(json::parse(formatAuditLine(record))["overrun_ratio"].is_null());
}

TEST(AuditLine, OutcomesAreSpelledAsDocumented) {
  const std::vector<std::pair<Outcome, std::string>> cases = {
      {Outcome::kOk, "ok"},
      {Outcome::kLengthCut, "length_cut"},
      {Outcome::kRejectedContext, "rejected_context"},
      {Outcome::kRejectedBudget, "rejected_budget"},
      {Outcome::kRerouted, "rerouted"},
  };
  for (const auto& [outcome, text] : cases) {
    AuditRecord record = sampleRecord();
    record.outcome = outcome;
    EXPECT_EQ(json::parse(formatAuditLine(record))["outcome"], text);
  }
  AuditRecord error = sampleRecord();
  error.outcome = Outcome::kError;
  error.error_class = "timeout";
  EXPECT_EQ(json::parse(formatAuditLine(error))["outcome"], "error:timeout");
}

TEST(AuditLine, InvalidUtf8IsReplaced) {
  AuditRecord record = sampleRecord();
  record.input_count_note = "bad \xff byte";
  std::string line = formatAuditLine(record);
  EXPECT_TRUE(json::accept(line));
  EXPECT_NE(line.find("bad \xEF\xBF\xBD byte"), std::string::npos);
}

TEST(AuditCost, UsesReportedUsageElseEstimates) {
  auto table = std::get<PriceTable>(
      PriceTable::fromJson(json::parse(R"({"m":{"input":1,"output":2}})"), "test"));
  AuditRecord record = sampleRecord();
  record.model = "m";
  record.input_tokens = 1'000'000;
  record.output_tokens = 500'000;
  EXPECT_DOUBLE_EQ(*auditCost(table, record, 7), 2.0);
  record.input_tokens.reset();
  record.output_tokens.reset();
  record.input_tokens_estimated = 2'000'000;
  EXPECT_DOUBLE_EQ(*auditCost(table, record, 1'000'000), 4.0);
  record.outcome = Outcome::kRejectedBudget;
  EXPECT_EQ(*auditCost(table, record, 0), 0.0);
  record.outcome = Outcome::kRejectedContext;
  EXPECT_EQ(*auditCost(table, record, 0), 0.0);
  record.outcome = Outcome::kRerouted;
  EXPECT_EQ(*auditCost(table, record, 0), 0.0);
  record.outcome = Outcome::kOk;
  record.model = "unpriced";
  EXPECT_FALSE(auditCost(table, record, 0).has_value());
}

TEST_F(AuditLogTest, AppendsOneLinePerRecord) {
  auto log = open();
  ASSERT_TRUE(log);
  ASSERT_EQ(log->append(sampleRecord()), "");
  ASSERT_EQ(log->append(sampleRecord()), "");
  std::vector<std::string> written = lines();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[0] + "\n", formatAuditLine(sampleRecord()));
}

TEST_F(AuditLogTest, OpenErrorNamesPathAndFix) {
  auto result = AuditLog::open("/nonexistent-folder/audit.jsonl");
  ASSERT_TRUE(std::holds_alternative<std::string>(result));
  const std::string& error = std::get<std::string>(result);
  EXPECT_NE(error.find("cannot open audit log /nonexistent-folder/audit.jsonl"), std::string::npos)
      << error;
  EXPECT_NE(error.find("create its folder"), std::string::npos) << error;
}

TEST_F(AuditLogTest, LinesFromEightThreadsNeverInterleave) {
  auto log = open();
  ASSERT_TRUE(log);
  constexpr int kThreads = 8, kPerThread = 500;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        AuditRecord record = sampleRecord();
        record.request_id = std::to_string(t) + "-" + std::to_string(i);
        // Lines of a few kilobytes, longer than one page, so a split write would show.
        record.input_count_note = std::string(static_cast<size_t>(1000 + 37 * t), 'a' + t);
        EXPECT_EQ(log->append(record), "");
      }
    });
  }
  for (auto& writer : writers) writer.join();
  std::vector<std::string> written = lines();
  ASSERT_EQ(written.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> ids;
  for (const std::string& line : written) {
    ASSERT_TRUE(json::accept(line)) << line.substr(0, 200);
    json record = json::parse(line);
    const std::string id = record["request_id"];
    const int thread = std::stoi(id.substr(0, id.find('-')));
    EXPECT_EQ(record["input_count_note"],
              std::string(static_cast<size_t>(1000 + 37 * thread), 'a' + thread));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), written.size());
}

TEST_F(AuditLogTest, AppendsAtEndAfterCopyTruncate) {
  auto log = open();
  ASSERT_TRUE(log);
  ASSERT_EQ(log->append(sampleRecord()), "");
  ASSERT_EQ(log->append(sampleRecord()), "");
  // What logrotate's copytruncate does: copy the file away, then truncate it in place.
  fs::copy_file(path_, path_ + ".1", fs::copy_options::overwrite_existing);
  fs::resize_file(path_, 0);
  ASSERT_EQ(log->append(sampleRecord()), "");
  std::vector<std::string> written = lines();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_TRUE(json::accept(written[0]));
  EXPECT_EQ(fs::file_size(path_), formatAuditLine(sampleRecord()).size());
  fs::remove(path_ + ".1");
}

TEST_F(AuditLogTest, ReopenFollowsRenamedFile) {
  auto log = open();
  ASSERT_TRUE(log);
  ASSERT_EQ(log->append(sampleRecord()), "");
  fs::rename(path_, path_ + ".1");
  ASSERT_EQ(log->reopen(), "");
  ASSERT_EQ(log->append(sampleRecord()), "");
  EXPECT_EQ(lines().size(), 1u);
  fs::remove(path_ + ".1");
}

}  // namespace
}  // namespace hfchain::plugins::budget
