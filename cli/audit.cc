// `hfchain audit summarize`: totals of a budget audit log (JSON lines, see docs/audit.md),
// grouped by key, model, day, tenant or target.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"

namespace hfchain::cli {
namespace {

constexpr const char* kAuditUsage =
    "usage: hfchain audit summarize FILE|- [--by key|model|day|tenant|target ...] [--json]";
const std::vector<std::string> kColumns = {"key", "model", "day", "tenant", "target"};

// Bounds of a valid line. A real request is far below both, and with them a sum of any
// realistic number of lines fits in int64_t and in a double; Totals still saturates.
constexpr int64_t kMaxTokens = 1'000'000'000'000'000;  // 10^15 tokens
constexpr double kMaxCostUsd = 1e12;
constexpr const char* kTokenRange = "a whole number from 0 to 1000000000000000";

struct Entry {
  std::map<std::string, std::string> columns;  // column name to value
  int64_t input_tokens_estimated = 0;
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<double> cost_usd;
  std::string outcome;
};

// Adds token counts of 0 or more, stopping at INT64_MAX instead of wrapping.
int64_t addSaturated(int64_t a, int64_t b, bool& saturated) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    saturated = true;
    return std::numeric_limits<int64_t>::max();
  }
  return sum;
}

struct Totals {
  int64_t requests = 0;
  int64_t input_tokens_estimated = 0;
  int64_t input_tokens = 0;   // sum of the reported counts only
  int64_t output_tokens = 0;  // sum of the reported counts only
  double cost_usd = 0;        // sum of the known costs only
  int64_t without_usage = 0;  // requests whose input_tokens is null
  int64_t unpriced = 0;       // requests whose cost_usd is null
  std::map<std::string, int64_t> outcomes;
  bool saturated = false;  // a token sum stopped at INT64_MAX

  void add(const Entry& entry) {
    ++requests;
    input_tokens_estimated =
        addSaturated(input_tokens_estimated, entry.input_tokens_estimated, saturated);
    input_tokens = addSaturated(input_tokens, entry.input_tokens.value_or(0), saturated);
    output_tokens = addSaturated(output_tokens, entry.output_tokens.value_or(0), saturated);
    cost_usd += entry.cost_usd.value_or(0);
    without_usage += entry.input_tokens ? 0 : 1;
    unpriced += entry.cost_usd ? 0 : 1;
    ++outcomes[entry.outcome];
  }
};

// Reads an optional string field; returns false when it is present but not a string.
bool readString(const nlohmann::json& line, const char* field, std::string& out) {
  if (!line.contains(field) || line[field].is_null()) return true;
  if (!line[field].is_string()) return false;
  out = line[field].get<std::string>();
  return true;
}

// Reads a field that is a whole number from 0 to kMaxTokens, or null; returns false otherwise.
bool readCount(const nlohmann::json& line, const char* field, std::optional<int64_t>& out) {
  if (!line.contains(field) || line[field].is_null()) return true;
  const nlohmann::json& value = line[field];
  // Checked as unsigned first, because get<int64_t>() of a value above INT64_MAX wraps.
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(kMaxTokens)) return false;
  } else if (!value.is_number_integer() || value.get<int64_t>() < 0) {
    return false;
  }
  out = value.get<int64_t>();
  return true;
}

// Reads `digits` decimal digits at `at`; returns -1 when any is not a digit.
int readDigits(const std::string& text, size_t at, size_t digits) {
  if (at + digits > text.size()) return -1;
  int value = 0;
  for (size_t i = at; i < at + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// Accepts an RFC 3339 time in UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, with a real calendar
// date, because the day column is taken from its first ten characters.
bool isUtcTime(const std::string& time) {
  const int year = readDigits(time, 0, 4), month = readDigits(time, 5, 2);
  const int day = readDigits(time, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || time[4] != '-' || time[7] != '-')
    return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return false;
  if (time.size() < 20 || (time[10] != 'T' && time[10] != 't') || time[13] != ':' ||
      time[16] != ':')
    return false;
  const int hour = readDigits(time, 11, 2), minute = readDigits(time, 14, 2);
  const int second = readDigits(time, 17, 2);
  // 60 is a leap second.
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return false;
  size_t end = 19;
  if (time[end] == '.') {
    const size_t digits = time.find_first_not_of("0123456789", end + 1);
    if (digits == end + 1 || digits == std::string::npos) return false;
    end = digits;
  }
  const std::string zone = time.substr(end);
  return zone == "Z" || zone == "z" || zone == "+00:00";
}

// Parses one audit line. Returns "" and fills `entry`, or returns the reason it is invalid.
std::string parseLine(const std::string& text, Entry& entry) {
  nlohmann::json line;
  try {
    line = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return "invalid JSON at byte " + std::to_string(e.byte);
  } catch (const nlohmann::json::out_of_range&) {
    // A number such as 1e400 does not fit in a double.
    return "a number is too large to read";
  }
  if (!line.is_object()) return "not a JSON object";
  std::string time;
  if (!readString(line, "time", time) || !isUtcTime(time))
    return "\"time\" is missing or not a UTC time such as 2026-12-04T18:00:00.123Z";
  entry.columns["day"] = time.substr(0, 10);
  for (const char* field : {"key", "model", "tenant", "target"}) {
    std::string value;
    if (!readString(line, field, value))
      return std::string("\"") + field + "\" is " + line[field].dump() + ", not a string";
    entry.columns[field] = value;
  }
  if (!readString(line, "outcome", entry.outcome) || entry.outcome.empty())
    return "\"outcome\" is missing or not a string";
  std::optional<int64_t> estimated;
  if (!readCount(line, "input_tokens_estimated", estimated) || !estimated)
    return "\"input_tokens_estimated\" is missing or not " + std::string(kTokenRange);
  entry.input_tokens_estimated = *estimated;
  for (auto [field, out] : {std::pair{"input_tokens", &entry.input_tokens},
                            std::pair{"output_tokens", &entry.output_tokens}}) {
    if (!readCount(line, field, *out))
      return std::string("\"") + field + "\" is " + line[field].dump() + ", not " + kTokenRange +
             " or null";
  }
  if (line.contains("cost_usd") && !line["cost_usd"].is_null()) {
    const nlohmann::json& cost = line["cost_usd"];
    // Large integers are read as double too; the comparison also rejects NaN.
    if (!cost.is_number() || !(cost.get<double>() >= 0 && cost.get<double>() <= kMaxCostUsd))
      return "\"cost_usd\" is " + cost.dump() + ", not a number from 0 to 1e12 or null";
    entry.cost_usd = cost.get<double>();
  }
  return "";
}

// Sums rounded to a nano-dollar, so that 0.1 + 0.2 prints as 0.3.
double roundCost(double usd) { return std::round(usd * 1e9) / 1e9; }

std::string formatCost(double usd) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6f", usd);
  return text;
}

std::string formatOutcomes(const std::map<std::string, int64_t>& outcomes) {
  std::string text;
  for (const auto& [outcome, count] : outcomes)
    text += (text.empty() ? "" : " ") + outcome + "=" + std::to_string(count);
  return text;
}

nlohmann::ordered_json totalsJson(const Totals& totals) {
  nlohmann::ordered_json json;
  json["requests"] = totals.requests;
  json["input_tokens_estimated"] = totals.input_tokens_estimated;
  json["input_tokens"] = totals.input_tokens;
  json["output_tokens"] = totals.output_tokens;
  json["cost_usd"] = roundCost(totals.cost_usd);
  json["requests_without_usage"] = totals.without_usage;
  json["requests_unpriced"] = totals.unpriced;
  json["outcomes"] = nlohmann::ordered_json::object();
  for (const auto& [outcome, count] : totals.outcomes) json["outcomes"][outcome] = count;
  return json;
}

using Groups = std::map<std::vector<std::string>, Totals>;

void printJson(const std::string& file, const std::vector<std::string>& by, const Groups& groups,
               const Totals& total, int64_t skipped, std::ostream& out) {
  nlohmann::ordered_json json;
  json["file"] = file;
  json["by"] = by;
  json["groups"] = nlohmann::ordered_json::array();
  for (const auto& [values, totals] : groups) {
    nlohmann::ordered_json group;
    for (size_t i = 0; i < by.size(); ++i) group[by[i]] = values[i];
    nlohmann::ordered_json sums = totalsJson(totals);
    for (auto& [name, value] : sums.items()) group[name] = value;
    json["groups"].push_back(std::move(group));
  }
  json["total"] = totalsJson(total);
  json["lines_skipped"] = skipped;
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
}

std::vector<std::string> tableRow(const std::vector<std::string>& first, const Totals& totals) {
  std::vector<std::string> row = first;
  for (int64_t count :
       {totals.requests, totals.input_tokens_estimated, totals.input_tokens, totals.output_tokens})
    row.push_back(std::to_string(count));
  row.push_back(formatCost(totals.cost_usd));
  row.push_back(std::to_string(totals.without_usage));
  row.push_back(std::to_string(totals.unpriced));
  row.push_back(formatOutcomes(totals.outcomes));
  return row;
}

void printTable(const std::vector<std::string>& by, const Groups& groups, const Totals& total,
                std::ostream& out) {
  std::vector<std::string> header = by;
  for (const char* name :
       {"requests", "input_est", "input", "output", "cost_usd", "no_usage", "unpriced", "outcomes"})
    header.push_back(name);
  std::vector<std::vector<std::string>> rows = {header};
  for (const auto& [values, totals] : groups) {
    std::vector<std::string> shown = values;
    // An empty value (no key, no tenant) would leave a gap that shifts the eye.
    for (std::string& value : shown) value = value.empty() ? "-" : value;
    rows.push_back(tableRow(shown, totals));
  }
  std::vector<std::string> total_label(by.size(), "");
  total_label[0] = "total";
  rows.push_back(tableRow(total_label, total));

  std::vector<size_t> widths(header.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const bool last = i + 1 == row.size();
      const bool number = i >= by.size() && !last;
      const std::string pad(widths[i] - row[i].size(), ' ');
      if (i > 0) line += "  ";
      line += number ? pad + row[i] : (last ? row[i] : row[i] + pad);
    }
    out << line << "\n";
  }
}

// Reads the --by values, which may repeat or be separated by commas; returns an error or "".
std::string readColumns(const std::vector<std::string>& values, std::vector<std::string>& by) {
  for (const std::string& value : values) {
    std::stringstream list(value);
    for (std::string column; std::getline(list, column, ',');) {
      if (std::find(kColumns.begin(), kColumns.end(), column) == kColumns.end())
        return "unknown --by column '" + column + "'; use key, model, day, tenant or target";
      if (std::find(by.begin(), by.end(), column) == by.end()) by.push_back(column);
    }
  }
  if (by.empty()) by = {"key", "model", "day"};
  return "";
}

int runSummarize(const std::string& file, const std::vector<std::string>& by, bool json,
                 std::ostream& out, std::ostream& err) {
  std::ifstream stream;
  if (file != "-") {
    stream.open(file);
    if (!stream) {
      err << "hfchain audit: cannot open " << file << "; check the path and its permissions\n";
      return kExitFailed;
    }
  }
  std::istream& in = file == "-" ? std::cin : stream;
  Groups groups;
  Totals total;
  int64_t skipped = 0;
  int64_t number = 0;
  for (std::string text; std::getline(in, text);) {
    ++number;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    Entry entry;
    if (std::string reason = parseLine(text, entry); !reason.empty()) {
      err << file << ":" << number << ": " << reason << "; line skipped\n";
      ++skipped;
      continue;
    }
    std::vector<std::string> values;
    for (const std::string& column : by) values.push_back(entry.columns[column]);
    groups[values].add(entry);
    total.add(entry);
  }
  if (json) {
    printJson(file, by, groups, total, skipped, out);
  } else {
    printTable(by, groups, total, out);
  }
  // Group sums are never larger than the total, so checking the total is enough.
  if (total.saturated) {
    err << "hfchain audit: a token total of " << file << " passed "
        << std::numeric_limits<int64_t>::max() << " and is shown as that maximum\n";
  }
  if (skipped > 0) {
    err << "hfchain audit: skipped " << skipped << " invalid line" << (skipped == 1 ? "" : "s")
        << " of " << file << "; the totals leave them out\n";
    return kExitSkippedLines;
  }
  return kExitOk;
}

}  // namespace

int runAudit(Arguments args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::vector<std::string> columns = args.takeAll("--by", error);
  bool json = args.flag("--json");
  if (!error.empty()) {
    err << "hfchain audit: " << error << "\n" << kAuditUsage << "\n";
    return kExitUsage;
  }
  if (auto unknown = args.unknownOption()) {
    err << "hfchain audit: " << *unknown << "\n" << kAuditUsage << "\n";
    return kExitUsage;
  }
  const std::vector<std::string>& words = args.rest();
  if (words.size() != 2 || words[0] != "summarize") {
    err << kAuditUsage << "\n";
    return kExitUsage;
  }
  std::vector<std::string> by;
  if (std::string problem = readColumns(columns, by); !problem.empty()) {
    err << "hfchain audit: " << problem << "\n";
    return kExitUsage;
  }
  return runSummarize(words[1], by, json, out, err);
}

}  // namespace hfchain::cli
