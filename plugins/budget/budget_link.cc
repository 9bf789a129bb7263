// The budget link counts a request's input tokens the way its target's model does and checks
// them with max_new_tokens against the context window: reject, clamp, truncate or hand over
// to a fallback link. It reserves the tokens in the configured budgets, cuts the output at
// its limit, and settles and audits the request when its stream ends.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "budget_config.h"
#include "budget_state.h"
#include "budget_stream.h"
#include "context_window.h"
#include "hfchain/sdk/link.h"
#include "output_limiter.h"
#include "text_boundaries.h"
#include "truncation.h"

namespace hfchain::plugins::budget {
namespace {

const char* countMethodName(hfc_count_method method) {
  switch (method) {
    case HFC_COUNT_TOKENIZER:
      return "tokenizer";
    case HFC_COUNT_REMOTE:
      return "remote";
    case HFC_COUNT_ESTIMATE:
      return "estimate";
  }
  return "estimate";
}

Prompt readPrompt(const sdk::Request& request) {
  Prompt prompt;
  for (size_t i = 0; i < request.messageCount(); ++i) {
    auto [role, content] = request.message(i);
    prompt.messages.push_back({std::string(role), std::string(content)});
  }
  if (prompt.messages.empty()) prompt.inputs = request.inputs();
  return prompt;
}

void writePrompt(sdk::Request& request, const Prompt& prompt) {
  if (!prompt.isChat()) {
    request.setInputs(prompt.inputs);
    return;
  }
  while (request.messageCount() > 0) request.eraseMessage(request.messageCount() - 1);
  for (size_t i = 0; i < prompt.messages.size(); ++i) {
    request.insertMessage(i, prompt.messages[i].role, prompt.messages[i].content);
  }
}

// Maximum bytes of input_count_note in the audit record, before the "…" that marks
// a cut. A chat template's error message may quote message content, which must not be
// copied whole into the audit file.
constexpr size_t kMaxAuditNoteBytes = 200;

// The request's limit on new tokens: its value when valid, else the message that rejects it.
struct MaxNewTokens {
  std::optional<int64_t> value;  // nullopt: the request sets no limit
  std::string error;             // non-empty: the request is invalid
};

// Reads max_new_tokens and max_tokens (the OpenAI name, which an OpenAI upstream obeys in
// preference to max_new_tokens). Each must be an integer of at least 1 when present; the
// smaller one is the limit. Values above INT64_MAX are read as INT64_MAX.
MaxNewTokens readMaxNewTokens(const sdk::Request& request) {
  MaxNewTokens out;
  for (const char* name : {"max_new_tokens", "max_tokens"}) {
    std::optional<nlohmann::json> param = request.param(name);
    if (!param || param->is_null()) continue;
    int64_t value = 0;
    if (param->is_number_unsigned()) {
      const uint64_t unsigned_value = param->get<uint64_t>();
      value = unsigned_value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                  ? std::numeric_limits<int64_t>::max()
                  : static_cast<int64_t>(unsigned_value);
    } else if (param->is_number_integer()) {
      value = param->get<int64_t>();
    }
    if (value < 1) {
      const std::string got = param->is_discarded() ? std::string("a value that is not JSON")
                                                    : shortenUtf8(param->dump(), 64);
      out.error = std::string(name) + " must be an integer of at least 1, got " + got +
                  "; send a whole number of tokens such as 256, or leave " + name +
                  " out to let the upstream choose";
      return out;
    }
    out.value = out.value ? std::min(*out.value, value) : value;
  }
  return out;
}

void setCountLabel(AuditRecord& record, const sdk::TokenCount& count) {
  record.input_count_method = countMethodName(count.method);
  record.input_count_note = shortenUtf8(count.note, kMaxAuditNoteBytes);
}

std::string joinIndices(const std::vector<size_t>& indices) {
  std::string out;
  for (size_t index : indices) out += (out.empty() ? "" : ", ") + std::to_string(index);
  return out;
}

class BudgetLink : public sdk::Link {
 public:
  static std::unique_ptr<BudgetLink> create(const nlohmann::json& settings, std::string& error) {
    auto state = std::make_shared<BudgetState>();
    state->config = parseBudgetConfig(settings, error);
    if (!state->config) return nullptr;
    // NOTE: a relative prices_file is resolved against the working directory, because the
    // link is not given the folder of the config file.
    std::variant<PriceTable, std::string> prices = PriceTable::fromSettings(settings, "");
    if (std::string* message = std::get_if<std::string>(&prices)) {
      error = *message;
      return nullptr;
    }
    state->prices = std::move(std::get<PriceTable>(prices));
    if (!state->config->audit_file.empty()) {
      auto audit = AuditLog::open(state->config->audit_file);
      if (std::string* message = std::get_if<std::string>(&audit)) {
        error = "audit_file: " + *message;
        return nullptr;
      }
      state->audit = std::move(std::get<std::unique_ptr<AuditLog>>(audit));
    }
    if (!state->config->budgets.empty()) {
      std::string load_error;
      state->ledger = acquireLedger(state->config->budgets, state->config->state_file, load_error);
      if (!load_error.empty()) {
        // The ledger has set the unreadable file aside and starts empty; requests go on.
        sdk::metricAdd("hfchain_budget_state_load_errors_total", "");
        const std::string message = "budget state file: " + load_error;
        sdk::host().log(nullptr, HFC_LOG_WARNING, sdk::detail::toStr(kLogger),
                        sdk::detail::toStr(message));
      }
    }
    return std::unique_ptr<BudgetLink>(new BudgetLink(std::move(state)));
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override;

 private:
  explicit BudgetLink(std::shared_ptr<const BudgetState> state) : state_(std::move(state)) {}

  // Rejects before sending: logs, counts, audits and returns the error response.
  sdk::Response reject(const sdk::Request& request, RequestFacts& facts, Outcome outcome,
                       const std::string& reason, const sdk::ErrorInfo& error) const;

  // Applies the truncate policy. Returns the error response when the prompt cannot fit.
  std::optional<sdk::Response> truncate(sdk::Request& request, sdk::Next& next, RequestFacts& facts,
                                        int64_t max_input_tokens, int64_t window) const;

  std::shared_ptr<const BudgetState> state_;
};

sdk::Response BudgetLink::reject(const sdk::Request& request, RequestFacts& facts, Outcome outcome,
                                 const std::string& reason, const sdk::ErrorInfo& error) const {
  request.log(HFC_LOG_INFO, kLogger, "rejected (" + reason + "): " + error.message);
  sdk::metricAdd("hfchain_budget_rejected_total",
                 "reason=\"" + reason + "\",target=\"" + labelValue(facts.target) + "\"");
  facts.record.outcome = outcome;
  facts.record.error_class = sdk::errorClassName(error.error_class);
  state_->writeAudit(facts.record, 0);
  return sdk::Response::error(error);
}

std::optional<sdk::Response> BudgetLink::truncate(sdk::Request& request, sdk::Next& next,
                                                  RequestFacts& facts, int64_t max_input_tokens,
                                                  int64_t window) const {
  const Prompt original = readPrompt(request);
  // Candidates are counted on a copy, so that the request changes only once, at the end.
  sdk::OwnedRequest scratch(request);
  sdk::Request scratch_view = scratch.view();
  sdk::TokenCount last_count;
  PromptCounter count = [&](const Prompt& prompt) -> int64_t {
    writePrompt(scratch_view, prompt);
    std::optional<sdk::TokenCount> tokens = next.countTokens(scratch_view);
    last_count = tokens.value_or(sdk::TokenCount{});
    return last_count.tokens;
  };
  TruncationResult result = truncatePrompt(original, max_input_tokens, count);
  if (!result.fits) {
    // The shortest attempt is the last one counted, and it decided the rejection.
    setCountLabel(facts.record, last_count);
    const std::string message =
        "the prompt cannot be truncated to the " + std::to_string(max_input_tokens) +
        " input tokens that fit the context window of " + std::to_string(window) +
        " tokens of target \"" + facts.target + "\": the system messages and the shortest " +
        "cut of the last user message count " + std::to_string(result.tokens) +
        " tokens; shorten the system messages or lower max_new_tokens";
    return reject(request, facts, Outcome::kRejectedContext, "truncation",
                  sdk::ErrorInfo{HFC_ERROR_BUDGET_EXCEEDED, 400, message, -1, -1});
  }
  writePrompt(request, result.prompt);
  // The truncated prompt may be counted another way than the original: a chat template
  // that raised on the original can render it, or the reverse. The record carries the
  // count of the prompt that is sent.
  if (std::optional<sdk::TokenCount> final_count = next.countTokens(request)) {
    result.tokens = final_count->tokens;
    setCountLabel(facts.record, *final_count);
  }
  std::string what;
  if (!result.dropped.empty()) {
    what = "dropped message(s) " + joinIndices(result.dropped) + " of " +
           std::to_string(original.messages.size());
  }
  if (result.cut_message) {
    what += (what.empty() ? "" : "; ") + std::string("cut ") + std::to_string(result.cut_bytes) +
            " bytes from the start of " +
            (original.isChat() ? "message " + std::to_string(*result.cut_message)
                               : std::string("the prompt")) +
            " at a " + cutLevelName(result.cut_level) + " boundary";
  }
  request.log(HFC_LOG_INFO, kLogger,
              "truncated the input from " + std::to_string(facts.input_tokens) + " to " +
                  std::to_string(result.tokens) + " tokens for the context window of " +
                  std::to_string(window) + " tokens of target \"" + facts.target + "\": " + what);
  sdk::metricAdd("hfchain_budget_truncated_messages_total",
                 "target=\"" + labelValue(facts.target) + "\"",
                 static_cast<double>(result.dropped.size()));
  facts.input_tokens = result.tokens;
  facts.record.input_tokens_estimated = result.tokens;
  return std::nullopt;
}

sdk::Response BudgetLink::roundTrip(sdk::Request& request, sdk::Next& next) {
  const BudgetConfig& config = *state_->config;
  std::optional<sdk::TargetInfo> info = next.target(request.target());
  if (!info) {
    // The dispatcher reports the unknown target; there is nothing to count against.
    request.log(HFC_LOG_DEBUG, kLogger,
                "target \"" + std::string(request.target()) + "\" not found; not checked");
    return next(request);
  }
  const TargetPolicy& policy = config.policyFor(info->name);

  RequestFacts facts;
  facts.request_id = request.id();
  facts.key_id = request.meta("key_id").value_or("");
  facts.tenant = request.meta("tenant").value_or("");
  facts.target = info->name;
  AuditRecord& record = facts.record;
  record.request_id = facts.request_id;
  record.key_id = facts.key_id;
  record.tenant = facts.tenant;
  record.target = facts.target;
  record.model = request.model().empty() ? info->model : std::string(request.model());
  const std::string target_label = "target=\"" + labelValue(facts.target) + "\"";

  MaxNewTokens requested = readMaxNewTokens(request);
  if (!requested.error.empty()) {
    return reject(request, facts, Outcome::kError, "invalid_max_new_tokens",
                  sdk::ErrorInfo{HFC_ERROR_INVALID_REQUEST, 400, requested.error, -1, -1});
  }

  sdk::TokenCount input_count;
  if (std::optional<sdk::TokenCount> count = next.countTokens(request)) {
    input_count = *count;
    facts.input_tokens = count->tokens;
    sdk::metricAdd("hfchain_budget_input_tokens_total",
                   target_label + ",method=\"" + countMethodName(count->method) + "\"",
                   static_cast<double>(count->tokens));
  }
  record.input_tokens_estimated = facts.input_tokens;

  std::optional<int64_t> max_new_tokens = requested.value;
  if (!max_new_tokens && policy.default_max_new_tokens > 0) {
    max_new_tokens = policy.default_max_new_tokens;
  }
  if (policy.max_output_tokens > 0 &&
      (!max_new_tokens || *max_new_tokens > policy.max_output_tokens)) {
    request.log(
        HFC_LOG_DEBUG, kLogger,
        "max_new_tokens set to max_output_tokens " + std::to_string(policy.max_output_tokens));
    max_new_tokens = policy.max_output_tokens;
  }
  // max_tokens is folded into max_new_tokens, so that a clamp below cannot be bypassed by
  // an OpenAI upstream that reads max_tokens first.
  if (request.param("max_tokens")) request.removeParam("max_tokens");
  if (max_new_tokens) request.setParam("max_new_tokens", *max_new_tokens);

  const int64_t window = policy.context_window > 0 ? policy.context_window : info->context_window;
  if (window <= 0) {
    request.log(HFC_LOG_DEBUG, kLogger,
                "context window of target \"" + facts.target + "\" unknown; not checked");
    input_count.note +=
        std::string(input_count.note.empty() ? "" : "; ") + "context window unknown, not checked";
  }
  setCountLabel(record, input_count);
  WindowDecision decision =
      decideWindow(policy, facts.target, window, facts.input_tokens, max_new_tokens);
  switch (decision.action) {
    case WindowDecision::Action::kSend:
      break;
    case WindowDecision::Action::kReject:
      return reject(request, facts, Outcome::kRejectedContext, decision.reason,
                    sdk::ErrorInfo{HFC_ERROR_BUDGET_EXCEEDED, 400, decision.message, -1, -1});
    case WindowDecision::Action::kFallback:
      // The fallback link above sends the request on and writes its own record, so this one
      // records rerouted rather than rejected.
      return reject(request, facts, Outcome::kRerouted, "context_overflow",
                    sdk::ErrorInfo{HFC_ERROR_CONTEXT_OVERFLOW, 400, decision.message, -1, -1});
    case WindowDecision::Action::kClamp:
      request.log(HFC_LOG_INFO, kLogger,
                  "max_new_tokens lowered from " + std::to_string(*max_new_tokens) + " to " +
                      std::to_string(decision.max_new_tokens) + ": " + decision.message);
      sdk::metricAdd("hfchain_budget_clamped_total", target_label);
      max_new_tokens = decision.max_new_tokens;
      request.setParam("max_new_tokens", *max_new_tokens);
      break;
    case WindowDecision::Action::kTruncate:
      if (std::optional<sdk::Response> rejected =
              truncate(request, next, facts, decision.max_input_tokens, window)) {
        return std::move(*rejected);
      }
      break;
  }

  // The output limit, when one is enforced on the stream.
  std::optional<int64_t> output_limit;
  if (policy.max_output_tokens > 0 || policy.enforce_max_output_tokens) {
    if (max_new_tokens) {
      output_limit = *max_new_tokens;
    } else if (window > 0) {
      output_limit = remainingWindow(window, facts.input_tokens);
    }
  }
  switch (policy.output_count) {
    case OutputCount::kEvents:
      facts.count_events = true;
      break;
    case OutputCount::kText:
      facts.count_events = false;
      break;
    case OutputCount::kAuto:
      facts.count_events =
          (info->protocol == "tgi" || info->protocol == "hf-serverless") && !request.messageCount();
      break;
  }

  if (state_->ledger) {
    // Without max_new_tokens the output may fill the rest of the window; with an unknown
    // window only the input is reserved, and the settlement charges the rest afterwards.
    const int64_t output_reserve =
        max_new_tokens ? *max_new_tokens : remainingWindow(window, facts.input_tokens);
    // Saturated and capped, because an unchecked max_new_tokens (unknown window) can be near
    // INT64_MAX, and a wrapped sum would reserve a negative count and pass every budget.
    auto reserved = state_->ledger->reserve(
        facts.key_id, facts.tenant, ledgerTokens(addTokens(facts.input_tokens, output_reserve)),
        unixSeconds());
    if (Rejection* rejection = std::get_if<Rejection>(&reserved)) {
      sdk::metricAdd("hfchain_budget_rejected_budget_total",
                     "budget=\"" + labelValue(rejection->rule) + "\"");
      return reject(request, facts, Outcome::kRejectedBudget, "budget",
                    sdk::ErrorInfo{HFC_ERROR_BUDGET_EXCEEDED, 429, rejection->describe(),
                                   rejection->resets_in_seconds * 1000, -1});
    }
    facts.reservation = std::get<Reservation>(std::move(reserved));
    state_->publishUsage(facts.key_id, facts.tenant);
  }

  sdk::Response response = next(request);
  if (std::optional<sdk::ErrorInfo> error = response.error()) {
    // Nothing was generated, so the reservation is released.
    if (facts.reservation) {
      state_->ledger->settle(*facts.reservation, 0, unixSeconds());
      state_->publishUsage(facts.key_id, facts.tenant);
    }
    record.outcome = Outcome::kError;
    record.error_class = sdk::errorClassName(error->error_class);
    state_->writeAudit(record, 0);
    return response;
  }

  auto owned_next = std::make_shared<sdk::OwnedNext>(next);
  std::unique_ptr<OutputLimiter> limiter;
  if (output_limit) {
    std::string target = facts.target;
    limiter = std::make_unique<OutputLimiter>(
        *output_limit, [owned_next, target](std::string_view text) -> int64_t {
          std::optional<sdk::TokenCount> count = owned_next->view().countText(target, text);
          // Without a count, every byte is taken as a token: never more than the limit.
          return count ? count->tokens : static_cast<int64_t>(text.size());
        });
    response.setHeader("x-hfchain-output-limit", std::to_string(*output_limit));
  }
  sdk::Response inner = sdk::takeStream(response);
  return sdk::wrap(std::move(response),
                   std::make_unique<BudgetStream>(std::move(inner), state_, std::move(owned_next),
                                                  std::move(facts), std::move(limiter)));
}

}  // namespace
}  // namespace hfchain::plugins::budget

HFCHAIN_PLUGIN("budget", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::budget::BudgetLink, "budget",
                            "checks context windows, enforces output limits and token budgets"))
