// State that the budget link shares with the streams it returns: the configuration, the
// ledger, the price table and the audit log. Streams may outlive the link's roundTrip, so
// they hold it through a shared_ptr.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "audit_log.h"
#include "budget_config.h"
#include "hfchain/sdk/link.h"
#include "ledger.h"
#include "price_table.h"

namespace hfchain::plugins::budget {

inline constexpr const char* kLogger = "budget";

// Thread-safe: the members are immutable after create() or thread-safe themselves.
struct BudgetState {
  std::unique_ptr<BudgetConfig> config;
  std::shared_ptr<Ledger> ledger;  // null when no budget is configured
  PriceTable prices;
  std::unique_ptr<AuditLog> audit;  // null when audit_file is not set

  // Sets the cost of `record` from the price table and appends it to the audit log, if
  // there is one. A failed write is logged at warning level and counted, never raised.
  void writeAudit(AuditRecord& record, int64_t streamed_output_tokens) const;

  // Sets the used-tokens gauges of every budget that applies to this caller.
  void publishUsage(const std::string& key_id, const std::string& tenant) const;
};

using BudgetStateSharedPtr = std::shared_ptr<const BudgetState>;

// Returns the ledger of `state_file` for `rules`. Link instances of one process that name the
// same state file share one ledger while their rules are equal, so that a config reload keeps
// the budgets and the reservations in flight, and two ledgers never write one file. When the
// rules differ, the running ledger writes the file a last time and retires, and a new one
// loads it. Without a state file every call makes a ledger of its own. `load_error` is set
// when the file could not be read (the ledger then starts empty).
std::shared_ptr<Ledger> acquireLedger(const std::vector<BudgetRule>& rules,
                                      const std::string& state_file, std::string& load_error);

// Returns the seconds since the Unix epoch, the clock of the ledger's windows.
int64_t unixSeconds();

// Logs about a request after its roundTrip has returned, when only its id is left.
void logForRequest(const std::string& request_id, hfc_log_level level, const std::string& message);

// Returns `value` as the text of a Prometheus label value, with \ and " escaped.
std::string labelValue(const std::string& value);

}  // namespace hfchain::plugins::budget
