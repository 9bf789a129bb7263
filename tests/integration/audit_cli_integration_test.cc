// `hfchain audit summarize` run as a user would run it, on an audit log written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/process.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::runCli;

std::string line(const std::string& time, const std::string& key, const std::string& tenant,
                 const std::string& target, const std::string& model, int estimated,
                 const std::string& input, const std::string& output, const std::string& cost,
                 const std::string& outcome) {
  return R"({"time":")" + time + R"(","request_id":"r","key":")" + key + R"(","tenant":")" +
         tenant + R"(","target":")" + target + R"(","model":")" + model +
         R"(","input_tokens_estimated":)" + std::to_string(estimated) +
         R"(,"input_count_method":"tokenizer","input_count_note":"","input_tokens":)" + input +
         R"(,"output_tokens":)" + output + R"(,"overrun_ratio":null,"cost_usd":)" + cost +
         R"(,"outcome":")" + outcome + "\"}\n";
}

// Five valid records over two days, two invalid lines (5 and 7) and a blank line.
std::string sampleLog() {
  return line("2026-12-04T10:00:00.000Z", "k1", "acme", "hf", "mA", 100, "110", "20", "0.25",
              "ok") +
         line("2026-12-04T11:00:00.000Z", "k1", "acme", "hf", "mA", 200, "190", "30", "0.5",
              "length_cut") +
         line("2026-12-04T12:00:00.000Z", "k2", "beta", "hf", "mB", 50, "null", "null", "null",
              "error:timeout") +
         line("2026-12-05T09:00:00.000Z", "k1", "acme", "hf2", "mA", 300, "300", "40", "0.125",
              "ok") +
         R"({"time":"2026-12-05T10:00:00.000Z","outcome":"ok"})"
         "\n" +
         line("2026-12-05T10:00:00.000Z", "k2", "beta", "hf", "mB", 10, "null", "null", "0",
              "rejected_budget") +
         line("yesterday", "k3", "beta", "hf", "mB", 10, "1", "1", "0", "ok") + "\n";
}

class AuditSummarize : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() /
             ("hfchain-audit-cli-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl"))
                .string();
    std::ofstream(path_) << sampleLog();
  }
  void TearDown() override { fs::remove(path_); }

  std::string path_;
};

TEST_F(AuditSummarize, TableTotalsByDefaultColumns) {
  testing::ProcessResult result = runCli({"audit", "summarize", path_});
  EXPECT_EQ(result.exit_code, 5) << result.err;
  EXPECT_EQ(result.out,
            "key    model  day         requests  input_est  input  output  cost_usd  no_usage  "
            "unpriced  outcomes\n"
            "k1     mA     2026-12-04         2        300    300      50  0.750000         0  "
            "       0  length_cut=1 ok=1\n"
            "k1     mA     2026-12-05         1        300    300      40  0.125000         0  "
            "       0  ok=1\n"
            "k2     mB     2026-12-04         1         50      0       0  0.000000         1  "
            "       1  error:timeout=1\n"
            "k2     mB     2026-12-05         1         10      0       0  0.000000         1  "
            "       0  rejected_budget=1\n"
            "total                            5        660    600      90  0.875000         2  "
            "       1  error:timeout=1 length_cut=1 ok=2 rejected_budget=1\n");
}

TEST_F(AuditSummarize, InvalidLinesAreReportedAndSkipped) {
  testing::ProcessResult result = runCli({"audit", "summarize", path_});
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_NE(result.err.find(path_ + ":5: \"input_tokens_estimated\" is missing"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find(path_ + ":7: \"time\" is missing or not a UTC time"), std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("skipped 2 invalid lines"), std::string::npos) << result.err;
  // The blank line 8 is not reported.
  EXPECT_EQ(result.err.find(":8:"), std::string::npos) << result.err;
}

TEST_F(AuditSummarize, TruncatedLineIsInvalidJson) {
  std::ofstream(path_, std::ios::app) << R"({"time":"2026-12-05T10:00:00.000Z","outc)";
  testing::ProcessResult result = runCli({"audit", "summarize", path_});
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_NE(result.err.find(path_ + ":9: invalid JSON at byte"), std::string::npos) << result.err;
}

TEST_F(AuditSummarize, JsonGroupedByTenant) {
  testing::ProcessResult result = runCli({"audit", "summarize", path_, "--by", "tenant", "--json"});
  EXPECT_EQ(result.exit_code, 5) << result.err;
  json summary = json::parse(result.out);
  EXPECT_EQ(summary["by"], json::array({"tenant"}));
  EXPECT_EQ(summary["lines_skipped"], 2);
  ASSERT_EQ(summary["groups"].size(), 2u);
  const json& acme = summary["groups"][0];
  EXPECT_EQ(acme["tenant"], "acme");
  EXPECT_EQ(acme["requests"], 3);
  EXPECT_EQ(acme["input_tokens_estimated"], 600);
  EXPECT_EQ(acme["input_tokens"], 600);
  EXPECT_EQ(acme["output_tokens"], 90);
  EXPECT_EQ(acme["cost_usd"], 0.875);
  EXPECT_EQ(acme["requests_without_usage"], 0);
  EXPECT_EQ(acme["requests_unpriced"], 0);
  EXPECT_EQ(acme["outcomes"], json::parse(R"({"length_cut":1,"ok":2})"));
  const json& beta = summary["groups"][1];
  EXPECT_EQ(beta["tenant"], "beta");
  EXPECT_EQ(beta["requests"], 2);
  EXPECT_EQ(beta["input_tokens_estimated"], 60);
  EXPECT_EQ(beta["requests_without_usage"], 2);
  EXPECT_EQ(beta["requests_unpriced"], 1);
  EXPECT_EQ(beta["outcomes"], json::parse(R"({"error:timeout":1,"rejected_budget":1})"));
  const json& total = summary["total"];
  EXPECT_EQ(total["requests"], 5);
  EXPECT_EQ(total["input_tokens_estimated"], 660);
  EXPECT_EQ(total["input_tokens"], 600);
  EXPECT_EQ(total["output_tokens"], 90);
  EXPECT_EQ(total["cost_usd"], 0.875);
}

TEST_F(AuditSummarize, ColumnsMayBeCommaSeparated) {
  testing::ProcessResult result =
      runCli({"audit", "summarize", path_, "--by", "model,target", "--by", "day", "--json"});
  json summary = json::parse(result.out);
  EXPECT_EQ(summary["by"], json::array({"model", "target", "day"}));
  ASSERT_EQ(summary["groups"].size(), 4u);
  EXPECT_EQ(summary["groups"][1]["model"], "mA");
  EXPECT_EQ(summary["groups"][1]["target"], "hf2");
  EXPECT_EQ(summary["groups"][1]["day"], "2026-12-05");
  EXPECT_EQ(summary["groups"][1]["requests"], 1);
}

TEST_F(AuditSummarize, CleanFileExitsZero) {
  std::ofstream(path_) << line("2026-12-04T10:00:00.000Z", "", "", "hf", "mA", 7, "7", "3", "null",
                               "ok");
  testing::ProcessResult result = runCli({"audit", "summarize", path_, "--by", "key"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out,
            "key    requests  input_est  input  output  cost_usd  no_usage  unpriced  outcomes\n"
            "-             1          7      7       3  0.000000         0         1  ok=1\n"
            "total         1          7      7       3  0.000000         0         1  ok=1\n");
}

TEST_F(AuditSummarize, ReadsStandardInput) {
  testing::ProcessResult result =
      runCli({"audit", "summarize", "-", "--json"}, {},
             line("2026-12-04T10:00:00.000Z", "k", "", "hf", "mA", 7, "7", "3", "0.5", "ok"));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(json::parse(result.out)["total"]["cost_usd"], 0.5);
}

TEST_F(AuditSummarize, UnknownColumnIsUsageError) {
  testing::ProcessResult result = runCli({"audit", "summarize", path_, "--by", "user"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("unknown --by column 'user'; use key, model, day, tenant or target"),
            std::string::npos)
      << result.err;
}

TEST_F(AuditSummarize, MissingFileFails) {
  testing::ProcessResult result = runCli({"audit", "summarize", path_ + ".missing"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("cannot open " + path_ + ".missing"), std::string::npos) << result.err;
}

TEST_F(AuditSummarize, MissingSubcommandShowsUsage) {
  testing::ProcessResult result = runCli({"audit", path_});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("usage: hfchain audit summarize FILE"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace hfchain
