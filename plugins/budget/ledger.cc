// Token budget ledger: windows, reservations and the state file.
#include "ledger.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace hfchain::plugins::budget {
namespace {

constexpr int kStateVersion = 1;
// Minimum seconds of the caller's clock between two state file writes by settle() and
// between two sweeps of idle buckets by reserve().
constexpr int64_t kFlushIntervalSeconds = 1;
constexpr int64_t kSweepIntervalSeconds = 60;

// Reservation ids are unique in the process, so a reservation settled into a ledger that did
// not make it (after a reload, say) matches nothing there.
std::atomic<uint64_t> next_reservation_id{1};

std::string withThousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

// Formats a duration with its two largest units: "3h12m", "12m5s", "45s", "2d3h".
std::string formatDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  const int64_t days = seconds / 86400, hours = seconds % 86400 / 3600;
  const int64_t minutes = seconds % 3600 / 60, secs = seconds % 60;
  if (days > 0) return std::to_string(days) + "d" + std::to_string(hours) + "h";
  if (hours > 0) return std::to_string(hours) + "h" + std::to_string(minutes) + "m";
  if (minutes > 0) return std::to_string(minutes) + "m" + std::to_string(secs) + "s";
  return std::to_string(secs) + "s";
}

std::string errnoText(int error) { return std::strerror(error); }

bool writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const char* scopeName(Scope scope) {
  switch (scope) {
    case Scope::kGlobal:
      return "global";
    case Scope::kTenant:
      return "tenant";
    case Scope::kKey:
      return "key";
  }
  return "global";
}

std::string Rejection::describe() const {
  std::string who;
  switch (scope) {
    case Scope::kGlobal:
      break;
    case Scope::kTenant:
      who = scope_value.empty() ? " for requests without a tenant" : " for tenant " + scope_value;
      break;
    case Scope::kKey:
      who = scope_value.empty() ? " for requests without a key" : " for key " + scope_value;
      break;
  }
  return "budget \"" + rule + "\"" + who + ": " + withThousands(used) + " used + " +
         withThousands(reserved) + " reserved + " + withThousands(requested) +
         " requested exceeds " + withThousands(limit) + " tokens; resets in " +
         formatDuration(resets_in_seconds);
}

size_t Ledger::BucketKeyHash::operator()(const BucketKey& key) const {
  return std::hash<std::string>()(key.scope_value) * 31 + key.rule_index;
}

Ledger::Ledger(std::vector<BudgetRule> rules, std::string state_file)
    : rules_(std::move(rules)), state_file_(std::move(state_file)) {}

Ledger::~Ledger() { flush(); }

int64_t Ledger::windowStart(const BudgetRule& rule, int64_t now_unix_s) const {
  // Floor division, so times before the epoch still fall into aligned windows.
  int64_t start = now_unix_s / rule.window_seconds * rule.window_seconds;
  if (start > now_unix_s) start -= rule.window_seconds;
  return start;
}

std::string Ledger::scopeValue(const BudgetRule& rule, std::string_view key_id,
                               std::string_view tenant) const {
  switch (rule.scope) {
    case Scope::kGlobal:
      return "";
    case Scope::kTenant:
      return std::string(tenant);
    case Scope::kKey:
      return std::string(key_id);
  }
  return "";
}

std::variant<Reservation, Rejection> Ledger::reserve(std::string_view key_id,
                                                     std::string_view tenant, int64_t tokens,
                                                     int64_t now_unix_s) {
  tokens = std::max<int64_t>(tokens, 0);
  std::lock_guard lock(mutex_);
  if (now_unix_s >= last_sweep_s_ + kSweepIntervalSeconds) sweepLocked(now_unix_s);

  // Check every rule before holding anything, so a rejection leaves no trace.
  Reservation reservation;
  reservation.tokens = tokens;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const BudgetRule& rule = rules_[i];
    Hold hold{i, scopeValue(rule, key_id, tenant), windowStart(rule, now_unix_s)};
    Window current;
    if (auto bucket = buckets_.find({i, hold.scope_value}); bucket != buckets_.end()) {
      if (auto window = bucket->second.find(hold.window_start); window != bucket->second.end())
        current = window->second;
    }
    if (current.settled + current.reserved + tokens > rule.limit_tokens) {
      return Rejection{rule.name,         rule.scope,
                       hold.scope_value,  current.settled,
                       current.reserved,  tokens,
                       rule.limit_tokens, hold.window_start + rule.window_seconds - now_unix_s};
    }
    reservation.holds.push_back(std::move(hold));
  }
  for (const Hold& hold : reservation.holds)
    buckets_[{hold.rule_index, hold.scope_value}][hold.window_start].reserved += tokens;
  reservation.id = next_reservation_id.fetch_add(1);
  pending_[reservation.id] = Pending{reservation.holds, tokens};
  return reservation;
}

void Ledger::settle(const Reservation& reservation, int64_t actual_tokens, int64_t now_unix_s) {
  actual_tokens = std::max<int64_t>(actual_tokens, 0);
  {
    std::lock_guard lock(mutex_);
    auto pending = pending_.find(reservation.id);
    if (pending == pending_.end()) return;
    for (const Hold& hold : pending->second.holds) {
      auto bucket = buckets_.find({hold.rule_index, hold.scope_value});
      if (bucket == buckets_.end()) continue;
      auto window = bucket->second.find(hold.window_start);
      if (window == bucket->second.end()) continue;
      window->second.reserved -= pending->second.tokens;
      window->second.settled += actual_tokens;
    }
    pending_.erase(pending);
    ++generation_;
  }
  flushIfDue(now_unix_s);
}

int64_t Ledger::used(std::string_view rule_name, std::string_view scope_value,
                     int64_t now_unix_s) const {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name != rule_name) continue;
    auto bucket = buckets_.find({i, std::string(scope_value)});
    if (bucket == buckets_.end()) return 0;
    auto window = bucket->second.find(windowStart(rules_[i], now_unix_s));
    if (window == bucket->second.end()) return 0;
    return window->second.settled + window->second.reserved;
  }
  return 0;
}

size_t Ledger::bucketCount() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void Ledger::sweepLocked(int64_t now_unix_s) {
  last_sweep_s_ = now_unix_s;
  for (auto bucket = buckets_.begin(); bucket != buckets_.end();) {
    const int64_t length = rules_[bucket->first.rule_index].window_seconds;
    for (auto window = bucket->second.begin(); window != bucket->second.end();) {
      const int64_t end = window->first + length;
      const bool idle = window->second.settled == 0 && window->second.reserved == 0;
      // An ended window stays while reservations made in it are in flight, so that their
      // settle still lands there, but for one window length at most: a reservation that is
      // never settled must not keep memory forever.
      const bool ended =
          end <= now_unix_s && (window->second.reserved == 0 || end + length <= now_unix_s);
      window = (idle || ended) ? bucket->second.erase(window) : std::next(window);
    }
    bucket = bucket->second.empty() ? buckets_.erase(bucket) : std::next(bucket);
  }
  for (auto pending = pending_.begin(); pending != pending_.end();) {
    bool kept = false;
    for (const Hold& hold : pending->second.holds) {
      auto bucket = buckets_.find({hold.rule_index, hold.scope_value});
      kept = kept || (bucket != buckets_.end() && bucket->second.count(hold.window_start) > 0);
    }
    pending = kept ? std::next(pending) : pending_.erase(pending);
  }
}

// State file shape:
// {"version":1,"rules":{"<name>":{"scope":"key","window_seconds":86400,
//   "windows":[{"start":1764806400,"used":{"<scope value>":1234}}]}}}
std::string Ledger::serializeLocked() const {
  nlohmann::json rules = nlohmann::json::object();
  for (size_t i = 0; i < rules_.size(); ++i) {
    std::map<int64_t, nlohmann::json> windows;
    for (const auto& [key, bucket] : buckets_) {
      if (key.rule_index != i) continue;
      for (const auto& [start, window] : bucket) {
        if (window.settled <= 0) continue;
        nlohmann::json& entry = windows[start];
        if (entry.is_null()) entry = {{"start", start}, {"used", nlohmann::json::object()}};
        entry["used"][key.scope_value] = window.settled;
      }
    }
    nlohmann::json list = nlohmann::json::array();
    for (auto& [start, entry] : windows) list.push_back(std::move(entry));
    rules[rules_[i].name] = {{"scope", scopeName(rules_[i].scope)},
                             {"window_seconds", rules_[i].window_seconds},
                             {"windows", std::move(list)}};
  }
  nlohmann::json state = {{"version", kStateVersion}, {"rules", std::move(rules)}};
  return state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string Ledger::load(int64_t now_unix_s) {
  if (state_file_.empty()) return "";
  std::error_code missing;
  if (!std::filesystem::exists(state_file_, missing) && !missing) return "";
  std::ifstream in(state_file_, std::ios::binary);
  std::string problem;
  std::string text;
  if (!in) {
    problem = "cannot be read (" + errnoText(errno) + ")";
  } else {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  if (problem.empty()) {
    std::lock_guard lock(mutex_);
    problem = applyStateLocked(text, now_unix_s);
    if (problem.empty()) return "";
    buckets_.clear();
  }
  // Keep the bad file for inspection; otherwise the next write would replace it.
  const std::string aside = state_file_ + ".corrupt";
  std::error_code rename_error;
  std::filesystem::rename(state_file_, aside, rename_error);
  std::string where = rename_error ? "; it could not be moved aside to " + aside + " (" +
                                         rename_error.message() +
                                         "), so move or delete it before the next write"
                                   : "; it was moved to " + aside;
  return "budget state file " + state_file_ + " " + problem + where +
         ". Budgets start empty; restore a good copy to keep the used counts, or delete the "
         "file to silence this message";
}

std::string Ledger::applyStateLocked(const std::string& text, int64_t now_unix_s) {
  nlohmann::json state = nlohmann::json::parse(text, nullptr, false);
  if (state.is_discarded()) return "is not valid JSON (truncated or corrupt)";
  if (!state.is_object() || !state.contains("version"))
    return "has no \"version\"; expected {\"version\":1,\"rules\":{...}}";
  if (state["version"] != kStateVersion)
    return "has version " + state["version"].dump() + "; this build reads version 1 only";
  if (!state.contains("rules") || !state["rules"].is_object()) return "has no \"rules\" object";

  for (const auto& [name, saved] : state["rules"].items()) {
    const std::string where = "rule \"" + name + "\"";
    if (!saved.is_object() || !saved.contains("scope") || !saved["scope"].is_string() ||
        !saved.contains("window_seconds") || !saved["window_seconds"].is_number_integer() ||
        !saved.contains("windows") || !saved["windows"].is_array())
      return "has an invalid " + where + ": expected scope, window_seconds and windows";
    auto rule = std::find_if(rules_.begin(), rules_.end(),
                             [&](const BudgetRule& r) { return r.name == name; });
    // A rule that is gone or has changed shape no longer counts the same thing.
    const bool matches = rule != rules_.end() && saved["scope"] == scopeName(rule->scope) &&
                         saved["window_seconds"] == rule->window_seconds;
    for (const auto& window : saved["windows"]) {
      if (!window.is_object() || !window.contains("start") ||
          !window["start"].is_number_integer() || !window.contains("used") ||
          !window["used"].is_object())
        return "has an invalid window in " + where + ": expected {\"start\":N,\"used\":{...}}";
      for (const auto& [value, count] : window["used"].items()) {
        if (!count.is_number_integer() || count.get<int64_t>() < 0)
          return "has an invalid count for \"" + value + "\" in " + where +
                 ": expected a whole number of tokens";
      }
      if (!matches) continue;
      const int64_t start = window["start"].get<int64_t>();
      if (start % rule->window_seconds != 0 || start + rule->window_seconds <= now_unix_s) continue;
      const size_t index = static_cast<size_t>(rule - rules_.begin());
      for (const auto& [value, count] : window["used"].items())
        buckets_[{index, value}][start].settled += count.get<int64_t>();
    }
  }
  return "";
}

std::string Ledger::writeStateFile(const std::string& text) const {
  static std::atomic<uint64_t> temp_counter{0};
  const std::string temp = state_file_ + ".tmp." + std::to_string(::getpid()) + "." +
                           std::to_string(temp_counter.fetch_add(1));
  auto fail = [&](const std::string& step) {
    std::string message = "cannot write budget state file " + state_file_ + ": " + step + " (" +
                          errnoText(errno) +
                          "); check that the folder exists and is writable, and that the disk "
                          "has space";
    ::unlink(temp.c_str());
    return message;
  };
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open " + temp);
  if (!writeAll(fd, text)) {
    std::string message = fail("write " + temp);
    ::close(fd);
    return message;
  }
  if (::fsync(fd) != 0) {
    std::string message = fail("fsync " + temp);
    ::close(fd);
    return message;
  }
  if (::close(fd) != 0) return fail("close " + temp);
  if (::rename(temp.c_str(), state_file_.c_str()) != 0) return fail("rename " + temp);
  // The rename itself is durable only once the folder is synced.
  std::string folder = std::filesystem::path(state_file_).parent_path().string();
  int dir = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return "";
}

std::string Ledger::flush() {
  if (state_file_.empty()) return "";
  std::lock_guard writer(flush_mutex_);
  return writeIfChanged();
}

void Ledger::retire() {
  if (state_file_.empty()) return;
  std::lock_guard writer(flush_mutex_);
  writeIfChanged();
  retired_ = true;
}

std::string Ledger::writeIfChanged() {
  if (retired_) return "";
  std::string text;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (generation_ == flushed_generation_) return "";
    text = serializeLocked();
    generation = generation_;
  }
  std::string error = writeStateFile(text);
  std::lock_guard lock(mutex_);
  if (error.empty()) flushed_generation_ = std::max(flushed_generation_, generation);
  return error;
}

void Ledger::flushIfDue(int64_t now_unix_s) {
  if (state_file_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (generation_ == flushed_generation_ || now_unix_s < last_flush_s_ + kFlushIntervalSeconds)
      return;
    last_flush_s_ = now_unix_s;
  }
  // A settling thread does not wait for a write already running in another thread. A change
  // that the running write missed goes out with the next due write, flush() or the
  // destructor.
  std::unique_lock writer(flush_mutex_, std::try_to_lock);
  if (!writer.owns_lock()) return;
  std::string error = writeIfChanged();
  std::lock_guard lock(mutex_);
  last_flush_error_ = error;
}

std::string Ledger::lastFlushError() const {
  std::lock_guard lock(mutex_);
  return last_flush_error_;
}

}  // namespace hfchain::plugins::budget
