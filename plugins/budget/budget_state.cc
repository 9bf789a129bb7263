// Ledgers shared across link instances, audit writing, usage gauges and small helpers shared
// by the link and its streams.
#include "budget_state.h"

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hfchain::plugins::budget {

std::shared_ptr<Ledger> acquireLedger(const std::vector<BudgetRule>& rules,
                                      const std::string& state_file, std::string& load_error) {
  struct Shared {
    std::vector<BudgetRule> rules;
    std::weak_ptr<Ledger> ledger;
  };
  static std::mutex mutex;
  static std::map<std::string, Shared> ledgers;  // by state file

  std::lock_guard lock(mutex);
  if (!state_file.empty()) {
    auto found = ledgers.find(state_file);
    if (found != ledgers.end()) {
      if (std::shared_ptr<Ledger> running = found->second.ledger.lock()) {
        if (found->second.rules == rules) return running;
        running->retire();
      }
    }
  }
  auto ledger = std::make_shared<Ledger>(rules, state_file);
  load_error = ledger->load(unixSeconds());
  if (!state_file.empty()) ledgers[state_file] = Shared{rules, ledger};
  return ledger;
}

int64_t unixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void logForRequest(const std::string& request_id, hfc_log_level level, const std::string& message) {
  if (sdk::host().log_enabled(level) == 0) return;
  // The host adds "[id]" only for a live request, so the id is written here the same way.
  const std::string line = "[" + request_id + "] " + message;
  sdk::host().log(nullptr, level, sdk::detail::toStr(kLogger), sdk::detail::toStr(line));
}

std::string labelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void BudgetState::writeAudit(AuditRecord& record, int64_t streamed_output_tokens) const {
  if (!audit) return;
  record.time_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  record.cost_usd = auditCost(prices, record, streamed_output_tokens);
  std::string error = audit->append(record);
  if (!error.empty()) {
    sdk::metricAdd("hfchain_budget_audit_errors_total", "");
    logForRequest(record.request_id, HFC_LOG_WARNING, "audit record not written: " + error);
  }
}

void BudgetState::publishUsage(const std::string& key_id, const std::string& tenant) const {
  if (!ledger) return;
  const int64_t now_s = unixSeconds();
  for (const BudgetRule& rule : config->budgets) {
    std::string value;
    if (rule.scope == Scope::kKey) value = key_id;
    if (rule.scope == Scope::kTenant) value = tenant;
    // NOTE: key and tenant budgets get one gauge series per caller key id or tenant.
    const std::string labels = "budget=\"" + labelValue(rule.name) + "\",scope=\"" +
                               scopeName(rule.scope) + "\",value=\"" + labelValue(value) + "\"";
    const auto used = static_cast<double>(ledger->used(rule.name, value, now_s));
    sdk::metricSet("hfchain_budget_used_tokens", labels, used);
    sdk::metricSet("hfchain_budget_used_ratio", labels,
                   used / static_cast<double>(rule.limit_tokens));
  }
}

}  // namespace hfchain::plugins::budget
