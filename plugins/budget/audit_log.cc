// Formatting and appending audit lines.
#include "audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace hfchain::plugins::budget {
namespace {

std::string outcomeText(const AuditRecord& record) {
  switch (record.outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kLengthCut:
      return "length_cut";
    case Outcome::kRejectedContext:
      return "rejected_context";
    case Outcome::kRejectedBudget:
      return "rejected_budget";
    case Outcome::kRerouted:
      return "rerouted";
    case Outcome::kError:
      return "error:" + (record.error_class.empty() ? std::string("unknown") : record.error_class);
  }
  return "ok";
}

// Formats Unix milliseconds as RFC 3339 UTC with milliseconds: 2026-12-04T18:00:00.123Z.
std::string formatTime(int64_t unix_ms) {
  int64_t seconds = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  std::time_t time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  char text[128];  // room for any int year, which keeps -Wformat-truncation quiet
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return text;
}

template <typename T>
nlohmann::ordered_json orNull(const std::optional<T>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

std::string openError(const std::string& path, int error) {
  return "cannot open audit log " + path + " for appending (" + std::strerror(error) +
         "); create its folder, fix its permissions or choose a writable path";
}

}  // namespace

std::optional<double> auditCost(const PriceTable& prices, const AuditRecord& record,
                                int64_t streamed_output_tokens) {
  // None of these was sent to its target: a rerouted request is sent elsewhere, and that
  // attempt writes a record of its own with the cost.
  if (record.outcome == Outcome::kRejectedBudget || record.outcome == Outcome::kRejectedContext ||
      record.outcome == Outcome::kRerouted) {
    return 0.0;
  }
  return prices.cost(record.model, record.input_tokens.value_or(record.input_tokens_estimated),
                     record.output_tokens.value_or(streamed_output_tokens));
}

std::string formatAuditLine(const AuditRecord& record) {
  std::optional<double> overrun;
  if (record.input_tokens && record.input_tokens_estimated > 0)
    overrun = static_cast<double>(*record.input_tokens) /
              static_cast<double>(record.input_tokens_estimated);
  // ordered_json keeps the documented field order, which makes lines easy to read by eye.
  nlohmann::ordered_json line;
  line["time"] = formatTime(record.time_unix_ms);
  line["request_id"] = record.request_id;
  line["key"] = record.key_id;
  line["tenant"] = record.tenant;
  line["target"] = record.target;
  line["model"] = record.model;
  line["input_tokens_estimated"] = record.input_tokens_estimated;
  line["input_count_method"] = record.input_count_method;
  line["input_count_note"] = record.input_count_note;
  line["input_tokens"] = orNull(record.input_tokens);
  line["output_tokens"] = orNull(record.output_tokens);
  line["overrun_ratio"] = orNull(overrun);
  line["cost_usd"] = orNull(record.cost_usd);
  line["outcome"] = outcomeText(record);
  // Invalid UTF-8 from an upstream becomes U+FFFD instead of throwing on the request path.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::variant<std::unique_ptr<AuditLog>, std::string> AuditLog::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return openError(path, errno);
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd));
}

AuditLog::~AuditLog() { ::close(fd_); }

std::string AuditLog::append(const AuditRecord& record) {
  const std::string line = formatAuditLine(record);
  std::shared_lock lock(mutex_);
  ssize_t written = -1;
  do {
    written = ::write(fd_, line.data(), line.size());
  } while (written < 0 && errno == EINTR);
  if (written < 0) {
    return "cannot append to audit log " + path_ + " (" + std::strerror(errno) +
           "); check the disk space and the file's permissions";
  }
  if (static_cast<size_t>(written) != line.size()) {
    return "audit log " + path_ + ": only " + std::to_string(written) + " of " +
           std::to_string(line.size()) + " bytes of a line were written; check the disk space";
  }
  return "";
}

std::string AuditLog::reopen() {
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return openError(path_, errno);
  std::unique_lock lock(mutex_);
  ::close(fd_);
  fd_ = fd;
  return "";
}

}  // namespace hfchain::plugins::budget
