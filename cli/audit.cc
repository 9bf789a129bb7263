// `hfchain audit summarize`: totals of a budget audit log (JSON lines, see docs/audit.md),
// grouped by key, model, day, tenant or target.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"

namespace hfchain::cli {
namespace {

constexpr const char* kAuditUsage =
    "usage: hfchain audit summarize FILE|- [--by key|model|day|tenant|target ...] [--json]";
const std::vector<std::string> kColumns = {"key", "model", "day", "tenant", "target"};

struct Entry {
  std::map<std::string, std::string> columns;  // column name to value
  int64_t input_tokens_estimated = 0;
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<double> cost_usd;
  std::string outcome;
};

struct Totals {
  int64_t requests = 0;
  int64_t input_tokens_estimated = 0;
  int64_t input_tokens = 0;   // sum of the reported counts only
  int64_t output_tokens = 0;  // sum of the reported counts only
  double cost_usd = 0;        // sum of the known costs only
  int64_t without_usage = 0;  // requests whose input_tokens is null
  int64_t unpriced = 0;       // requests whose cost_usd is null
  std::map<std::string, int64_t> outcomes;

  void add(const Entry& entry) {
    ++requests;
    input_tokens_estimated += entry.input_tokens_estimated;
    input_tokens += entry.input_tokens.value_or(0);
    output_tokens += entry.output_tokens.value_or(0);
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

// Reads a field that is a whole number of 0 or more, or null; returns false otherwise.
bool readCount(const nlohmann::json& line, const char* field, std::optional<int64_t>& out) {
  if (!line.contains(field) || line[field].is_null()) return true;
  if (!line[field].is_number_integer() || line[field].get<int64_t>() < 0) return false;
  out = line[field].get<int64_t>();
  return true;
}

bool isDate(const std::string& time) {
  if (time.size() < 10 || time[4] != '-' || time[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (time[i] < '0' || time[i] > '9') return false;
  }
  return true;
}

// Parses one audit line. Returns "" and fills `entry`, or returns the reason it is invalid.
std::string parseLine(const std::string& text, Entry& entry) {
  nlohmann::json line;
  try {
    line = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return "invalid JSON at byte " + std::to_string(e.byte);
  }
  if (!line.is_object()) return "not a JSON object";
  std::string time;
  if (!readString(line, "time", time) || !isDate(time))
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
    return "\"input_tokens_estimated\" is missing or not a whole number of 0 or more";
  entry.input_tokens_estimated = *estimated;
  for (auto [field, out] : {std::pair{"input_tokens", &entry.input_tokens},
                            std::pair{"output_tokens", &entry.output_tokens}}) {
    if (!readCount(line, field, *out))
      return std::string("\"") + field + "\" is " + line[field].dump() +
             ", not a whole number of 0 or more or null";
  }
  if (line.contains("cost_usd") && !line["cost_usd"].is_null()) {
    if (!line["cost_usd"].is_number() || line["cost_usd"].get<double>() < 0)
      return "\"cost_usd\" is " + line["cost_usd"].dump() + ", not a number of 0 or more or null";
    entry.cost_usd = line["cost_usd"].get<double>();
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
