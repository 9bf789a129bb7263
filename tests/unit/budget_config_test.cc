// Settings validation and the context window decision of the budget link.
#include "../../plugins/budget/budget_config.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "../../plugins/budget/context_window.h"

namespace hfchain::plugins::budget {
namespace {

std::string errorOf(const std::string& json) {
  std::string error;
  std::unique_ptr<BudgetConfig> config = parseBudgetConfig(nlohmann::json::parse(json), error);
  EXPECT_FALSE(config) << json;
  return error;
}

TEST(BudgetConfig, DefaultsWithEmptySettings) {
  std::string error;
  std::unique_ptr<BudgetConfig> config = parseBudgetConfig(nlohmann::json::object(), error);
  ASSERT_TRUE(config) << error;
  EXPECT_EQ(config->defaults.on_context_overflow, OverflowPolicy::kReject);
  EXPECT_EQ(config->defaults.min_new_tokens, 1);
  EXPECT_EQ(config->defaults.max_output_tokens, 0);
  EXPECT_FALSE(config->defaults.enforce_max_output_tokens);
  EXPECT_TRUE(config->budgets.empty());
}

TEST(BudgetConfig, TargetOverridesStartFromLinkValues) {
  std::string error;
  auto config = parseBudgetConfig(nlohmann::json::parse(R"({
      "on_context_overflow": "clamp", "min_new_tokens": 16,
      "targets": {"chat": {"enforce_max_output_tokens": true, "context_window": 8192}}})"),
                                  error);
  ASSERT_TRUE(config) << error;
  const TargetPolicy& chat = config->policyFor("chat");
  EXPECT_EQ(chat.on_context_overflow, OverflowPolicy::kClamp);
  EXPECT_EQ(chat.min_new_tokens, 16);
  EXPECT_TRUE(chat.enforce_max_output_tokens);
  EXPECT_EQ(chat.context_window, 8192);
  EXPECT_FALSE(config->policyFor("other").enforce_max_output_tokens);
}

TEST(BudgetConfig, ParsesBudgets) {
  std::string error;
  auto config = parseBudgetConfig(nlohmann::json::parse(R"({"budgets": [
      {"name": "daily", "scope": "key", "limit_tokens": 1000},
      {"name": "hourly", "scope": "tenant", "limit_tokens": 50, "window_seconds": 3600}]})"),
                                  error);
  ASSERT_TRUE(config) << error;
  ASSERT_EQ(config->budgets.size(), 2u);
  EXPECT_EQ(config->budgets[0].scope, Scope::kKey);
  EXPECT_EQ(config->budgets[0].window_seconds, 86400);
  EXPECT_EQ(config->budgets[1].scope, Scope::kTenant);
  EXPECT_EQ(config->budgets[1].window_seconds, 3600);
}

TEST(BudgetConfig, RejectionsNameKeyValueAndAllowed) {
  EXPECT_EQ(errorOf(R"({"on_context_overflow": "drop"})"),
            "on_context_overflow must be reject, clamp, truncate or fallback, got \"drop\"");
  EXPECT_EQ(errorOf(R"({"min_new_tokens": 0})"),
            "min_new_tokens must be an integer from 1 to 100000000, got 0");
  EXPECT_EQ(errorOf(R"({"enforce_max_output_tokens": "yes"})"),
            "enforce_max_output_tokens must be true or false, got \"yes\"");
  EXPECT_EQ(errorOf(R"({"output_count": "bytes"})"),
            "output_count must be auto, events or text, got \"bytes\"");
  EXPECT_EQ(errorOf(R"({"targets": {"a": {"context_window": -1}}})"),
            "targets.a.context_window must be an integer from 1 to 100000000, got -1");
  EXPECT_EQ(errorOf(R"({"targets": {"a": {"budgets": []}}})")
                .rfind("unknown setting 'targets.a.budgets'; expected one of", 0),
            0u);
  EXPECT_EQ(errorOf(R"({"max_tokens": 5})").rfind("unknown setting 'max_tokens'", 0), 0u);
  EXPECT_EQ(errorOf(R"({"budgets": [{"name": "a", "scope": "user", "limit_tokens": 5}]})"),
            "budgets[0].scope must be global, tenant or key, got \"user\"");
  EXPECT_EQ(errorOf(R"({"budgets": [{"name": "a", "limit_tokens": 0}]})"),
            "budgets[0].limit_tokens must be an integer from 1 to 1000000000000, got 0");
  EXPECT_EQ(errorOf(R"({"budgets": [{"name": "a"}]})"),
            "budgets[0].limit_tokens is missing; expected the tokens allowed per window");
  EXPECT_EQ(errorOf(R"({"budgets": [{"name": "a", "limit_tokens": 5},
                                    {"name": "a", "limit_tokens": 6}]})"),
            "budgets[1].name \"a\" is used by an earlier budget; names must be unique");
  EXPECT_EQ(errorOf(R"({"state_file": "/tmp/x.json"})"),
            "state_file is set but budgets is empty; add a budget or remove state_file");
  EXPECT_EQ(errorOf(R"({"min_new_tokens": 50, "max_output_tokens": 10})"),
            "min_new_tokens 50 exceeds max_output_tokens 10; lower min_new_tokens or raise "
            "max_output_tokens");
  EXPECT_EQ(errorOf(R"([1])"), "settings must be a map, got [1]");
}

TEST(BudgetConfig, FilePathsMustNameFiles) {
  const std::string folder = ::testing::TempDir();
  const std::string as_directory = errorOf(nlohmann::json{
      {"state_file", folder},
      {"budgets",
       {{{"name", "a"}, {"limit_tokens", 5}}}}}.dump());
  EXPECT_NE(as_directory.find("is not a regular file"), std::string::npos) << as_directory;
  const std::string no_folder =
      errorOf(R"({"audit_file": "/nonexistent-hfchain-folder/audit.jsonl"})");
  EXPECT_NE(no_folder.find("the folder \"/nonexistent-hfchain-folder\" does not exist"),
            std::string::npos)
      << no_folder;
}

TEST(BudgetConfig, RejectsSettingsThatCannotWork) {
  EXPECT_EQ(errorOf(R"({"min_new_tokens": 64, "default_max_new_tokens": 32})"),
            "min_new_tokens 64 exceeds default_max_new_tokens 32, so every request without "
            "max_new_tokens would be rejected; lower min_new_tokens or raise "
            "default_max_new_tokens");
  EXPECT_EQ(errorOf(R"({"default_max_new_tokens": 32,
                        "targets": {"chat": {"min_new_tokens": 64}}})"),
            "targets.chat: min_new_tokens 64 exceeds default_max_new_tokens 32, so every "
            "request without max_new_tokens would be rejected; lower min_new_tokens or raise "
            "default_max_new_tokens");
  EXPECT_EQ(errorOf(R"({"targets": {"chat": {"min_new_tokens": 64, "max_output_tokens": 16}}})"),
            "targets.chat: min_new_tokens 64 exceeds max_output_tokens 16; lower "
            "min_new_tokens or raise max_output_tokens");
  EXPECT_EQ(errorOf(R"({"min_new_tokens": 64, "targets": {"small": {"context_window": 32}}})"),
            "targets.small: min_new_tokens 64 exceeds context_window 32, so no request fits "
            "the window; lower min_new_tokens or raise context_window");
  EXPECT_EQ(errorOf(R"({"state_file": "/tmp/budget.jsonl", "audit_file": "/tmp/budget.jsonl",
                        "budgets": [{"name": "a", "limit_tokens": 5}]})"),
            "state_file \"/tmp/budget.jsonl\" and audit_file \"/tmp/budget.jsonl\" name the "
            "same file, and the audit lines would corrupt the budget state; give them "
            "different paths");
  EXPECT_NE(errorOf(R"({"state_file": "/tmp/./budget.jsonl", "audit_file": "/tmp/budget.jsonl",
                        "budgets": [{"name": "a", "limit_tokens": 5}]})"),
            "");
  // Values that can work still pass.
  std::string error;
  EXPECT_TRUE(parseBudgetConfig(nlohmann::json::parse(R"({"min_new_tokens": 32,
                        "default_max_new_tokens": 32, "max_output_tokens": 32,
                        "targets": {"t": {"context_window": 32}}})"),
                                error))
      << error;
}

TargetPolicy policyWith(OverflowPolicy on_overflow, int64_t min_new_tokens = 1) {
  TargetPolicy policy;
  policy.on_context_overflow = on_overflow;
  policy.min_new_tokens = min_new_tokens;
  return policy;
}

TEST(DecideWindow, RejectNamesCountsAndFix) {
  WindowDecision decision =
      decideWindow(policyWith(OverflowPolicy::kReject), "primary", 4096, 12, 4096);
  EXPECT_EQ(decision.action, WindowDecision::Action::kReject);
  EXPECT_EQ(decision.message,
            "input 12 tokens + max_new_tokens 4096 exceeds the context window of 4096 tokens of "
            "target \"primary\"; lower max_new_tokens to at most 4084 or shorten the prompt");
}

TEST(DecideWindow, FitsAndUnknownWindowSend) {
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kReject), "t", 4096, 12, 4084).action,
            WindowDecision::Action::kSend);
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kReject), "t", 0, 100000, 100000).action,
            WindowDecision::Action::kSend);
}

TEST(DecideWindow, ClampLowersToRoomOrRejectsBelowMinimum) {
  WindowDecision clamp = decideWindow(policyWith(OverflowPolicy::kClamp, 16), "t", 100, 60, 50);
  EXPECT_EQ(clamp.action, WindowDecision::Action::kClamp);
  EXPECT_EQ(clamp.max_new_tokens, 40);
  WindowDecision low = decideWindow(policyWith(OverflowPolicy::kClamp, 16), "t", 100, 90, 50);
  EXPECT_EQ(low.action, WindowDecision::Action::kReject);
  EXPECT_EQ(low.reason, "min_new_tokens");
  EXPECT_EQ(low.message,
            "input 90 tokens leave 10 of the context window of 100 tokens of target \"t\", "
            "fewer than min_new_tokens 16; shorten the prompt to at most 84 tokens");
}

TEST(DecideWindow, TruncateKeepsRoomForMaxNewTokens) {
  WindowDecision decision = decideWindow(policyWith(OverflowPolicy::kTruncate), "t", 100, 90, 30);
  EXPECT_EQ(decision.action, WindowDecision::Action::kTruncate);
  EXPECT_EQ(decision.max_input_tokens, 70);
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kTruncate), "t", 100, 90, 100).action,
            WindowDecision::Action::kReject);
}

TEST(DecideWindow, FallbackAndAbsentMaxNewTokens) {
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kFallback), "t", 100, 90, 30).action,
            WindowDecision::Action::kFallback);
  // Without max_new_tokens, min_new_tokens must still fit after the input.
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kReject, 8), "t", 100, 92, std::nullopt).action,
            WindowDecision::Action::kSend);
  WindowDecision over =
      decideWindow(policyWith(OverflowPolicy::kReject, 8), "t", 100, 93, std::nullopt);
  EXPECT_EQ(over.action, WindowDecision::Action::kReject);
  EXPECT_EQ(over.message,
            "input 93 tokens leave 7 of the context window of 100 tokens of target \"t\", fewer "
            "than min_new_tokens 8; shorten the prompt to at most 92 tokens");
}

TEST(DecideWindow, Int64MaxNewTokensDoesNotFit) {
  const int64_t huge = std::numeric_limits<int64_t>::max();
  WindowDecision reject = decideWindow(policyWith(OverflowPolicy::kReject), "t", 4096, 12, huge);
  EXPECT_EQ(reject.action, WindowDecision::Action::kReject);
  EXPECT_EQ(reject.message,
            "input 12 tokens + max_new_tokens 9223372036854775807 exceeds the context window of "
            "4096 tokens of target \"t\"; lower max_new_tokens to at most 4084 or shorten the "
            "prompt");
  WindowDecision clamp = decideWindow(policyWith(OverflowPolicy::kClamp), "t", 4096, 12, huge);
  EXPECT_EQ(clamp.action, WindowDecision::Action::kClamp);
  EXPECT_EQ(clamp.max_new_tokens, 4084);
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kTruncate), "t", 4096, 12, huge).action,
            WindowDecision::Action::kReject);
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kFallback), "t", 4096, 12, huge).action,
            WindowDecision::Action::kFallback);
  // A huge input is over the window whatever max_new_tokens is.
  EXPECT_EQ(decideWindow(policyWith(OverflowPolicy::kReject), "t", 4096, huge, 1).action,
            WindowDecision::Action::kReject);
}

TEST(DecideWindow, TokenSumsSaturate) {
  const int64_t huge = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(addTokens(12, huge), huge);
  EXPECT_EQ(addTokens(huge, huge), huge);
  EXPECT_EQ(addTokens(12, 30), 42);
  EXPECT_EQ(ledgerTokens(addTokens(12, huge)), kMaxLedgerTokens);
  EXPECT_EQ(remainingWindow(100, 130), 0);
  EXPECT_EQ(remainingWindow(100, 30), 70);
}

}  // namespace
}  // namespace hfchain::plugins::budget
