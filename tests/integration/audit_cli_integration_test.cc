// `hfchain audit summarize` run as a user would run it, on an audit log written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
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

// A valid line with the given fields replaced by raw JSON text.
std::string lineWith(const std::map<std::string, std::string>& fields) {
  json record = json::parse(
      line("2026-12-04T10:00:00.000Z", "k", "", "hf", "mA", 100, "100", "10", "0.5", "ok"));
  std::string text = record.dump();
  for (const auto& [field, value] : fields) {
    const std::string old = "\"" + field + "\":" + record[field].dump();
    text.replace(text.find(old), old.size(), "\"" + field + "\":" + value);
  }
  return text + "\n";
}

TEST_F(AuditSummarize, OutOfRangeValuesAreSkipped) {
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"input_tokens_estimated", "9223372036854775807"},
      {"input_tokens_estimated", "18446744073709551615"},
      {"input_tokens_estimated", "1000000000000001"},
      {"input_tokens", "9223372036854775807"},
      {"output_tokens", "1000000000000001"},
      {"cost_usd", "1e308"},
      {"cost_usd", "1000000000001"},
      {"cost_usd", "1e400"},
      {"time", R"("2026-13-45T10:00:00.000Z")"},
      {"time", R"("2026-02-29T10:00:00.000Z")"},
      {"time", R"("2026-04-31T10:00:00.000Z")"},
      {"time", R"("2026-12-04T24:00:00.000Z")"},
      {"time", R"("2026-12-04T10:00:00.000+05:00")"},
      {"time", R"("2026-12-04")"},
  };
  std::string text;
  for (const auto& [field, value] : invalid) text += lineWith({{field, value}});
  // Valid lines at the bounds.
  text += lineWith({{"input_tokens_estimated", "1000000000000000"}, {"cost_usd", "1e12"}});
  text += lineWith({{"time", R"("2028-02-29T23:59:60Z")"}});
  std::ofstream(path_) << text;

  testing::ProcessResult result = runCli({"audit", "summarize", path_, "--by", "key", "--json"});
  EXPECT_EQ(result.exit_code, 5) << result.err;
  for (size_t i = 0; i < invalid.size(); ++i) {
    const std::string where = path_ + ":" + std::to_string(i + 1) + ": ";
    const size_t at = result.err.find(where);
    ASSERT_NE(at, std::string::npos) << invalid[i].first << " " << invalid[i].second << "\n"
                                     << result.err;
    const std::string reason = result.err.substr(at, result.err.find('\n', at) - at);
    const std::string& field = invalid[i].first;
    if (field == "cost_usd" && invalid[i].second == "1e400") {
      EXPECT_NE(reason.find("a number is too large to read"), std::string::npos) << reason;
    } else {
      EXPECT_NE(reason.find("\"" + field + "\""), std::string::npos) << reason;
    }
    EXPECT_NE(reason.find("line skipped"), std::string::npos) << reason;
  }
  EXPECT_EQ(result.err.find(":15:"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find(":16:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("skipped 14 invalid lines"), std::string::npos) << result.err;

  json summary = json::parse(result.out);
  const json& total = summary["total"];
  EXPECT_EQ(total["requests"], 2);
  EXPECT_EQ(total["input_tokens_estimated"], 1000000000000100);
  EXPECT_EQ(total["input_tokens"], 200);
  EXPECT_EQ(total["output_tokens"], 20);
  // Rounding to 1e-9 USD is not exact at 10^12 USD, so compare to a tenth of a cent.
  EXPECT_NEAR(total["cost_usd"].get<double>(), 1e12 + 0.5, 1e-3);
  EXPECT_EQ(summary["lines_skipped"], 14);
}

TEST_F(AuditSummarize, TokenTotalsSaturate) {
  // 9,300 lines of 10^15 tokens sum to more than INT64_MAX (about 9.22 * 10^18).
  std::string text;
  const std::string big = lineWith({{"input_tokens_estimated", "1000000000000000"},
                                    {"input_tokens", "1000000000000000"},
                                    {"output_tokens", "1000000000000000"}});
  for (int i = 0; i < 9300; ++i) text += big;
  std::ofstream(path_) << text;
  testing::ProcessResult result = runCli({"audit", "summarize", path_, "--by", "key", "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  json total = json::parse(result.out)["total"];
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(total["requests"], 9300);
  EXPECT_EQ(total["input_tokens_estimated"], kMax);
  EXPECT_EQ(total["input_tokens"], kMax);
  EXPECT_EQ(total["output_tokens"], kMax);
  EXPECT_NE(result.err.find("a token total of " + path_ + " passed 9223372036854775807"),
            std::string::npos)
      << result.err;
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
