// The cost audit log: one JSON line per request, appended to a file. docs/audit.md describes
// every field.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <variant>

#include "price_table.h"

namespace hfchain::plugins::budget {

enum class Outcome {
  kOk,               // "ok"
  kLengthCut,        // "length_cut": the output was cut at the budget's output limit
  kRejectedContext,  // "rejected_context": the input did not fit the model's context window
  kRejectedBudget,   // "rejected_budget"
  kRerouted,         // "rerouted": sent to another target than the one requested
  kError,            // "error:<error_class>"
};

struct AuditRecord {
  int64_t time_unix_ms = 0;  // when the request finished
  std::string request_id;
  std::string key_id;  // the key's fingerprint from the request metadata; never the key itself
  std::string tenant;
  std::string target;
  std::string model;
  int64_t input_tokens_estimated = 0;
  std::string input_count_method;       // "tokenizer", "remote" or "estimate"
  std::string input_count_note;         // why the method was chosen, e.g. the tokenizer was missing
  std::optional<int64_t> input_tokens;  // the upstream's reported usage, when it sent one
  std::optional<int64_t> output_tokens;  // the upstream's reported usage, when it sent one
  std::optional<double> cost_usd;        // nullopt when the model has no price
  Outcome outcome = Outcome::kOk;
  std::string error_class;  // written as "error:<error_class>" when outcome is kError
};

// Computes the cost of a finished request by the rule in docs/audit.md. A request rejected
// before sending costs 0. Otherwise the reported input tokens (else the estimate) and the
// reported output tokens (else `streamed_output_tokens`) are priced at the model's price.
// Returns nullopt when the model has no price.
std::optional<double> auditCost(const PriceTable& prices, const AuditRecord& record,
                                int64_t streamed_output_tokens);

// Returns the record as one JSON line ending in '\n'. overrun_ratio is derived here:
// input_tokens / input_tokens_estimated, null when either is missing or the estimate is 0.
std::string formatAuditLine(const AuditRecord& record);

// Thread-safe. Each line goes to the file in a single write(2) on a descriptor opened with
// O_APPEND, so lines from concurrent writers, or from several processes, do not interleave.
// After a copy-and-truncate rotation the next line starts at the new end of the file.
class AuditLog {
 public:
  // Opens (creating with mode 0640) `path` for appending. Returns the log or an error
  // naming the path and the fix.
  static std::variant<std::unique_ptr<AuditLog>, std::string> open(const std::string& path);
  ~AuditLog();

  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one line. Returns "" or an error naming the path. A line that could not be
  // written whole is reported and not retried, because a retry could split it.
  std::string append(const AuditRecord& record);
  // Closes and opens the path again, for rotation by renaming the file. On error the old
  // descriptor is kept.
  std::string reopen();
  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  std::shared_mutex mutex_;  // shared by append, exclusive by reopen, which replaces fd_
  int fd_;                   // guarded by mutex_
};

}  // namespace hfchain::plugins::budget
