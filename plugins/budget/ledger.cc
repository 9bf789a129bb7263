// Token budget ledger: windows, reservations and the state file.
#include "ledger.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
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

// Adds two counts of 0 or more, stopping at INT64_MAX. Sets `overflowed` when it stopped.
int64_t addSaturated(int64_t a, int64_t b, bool& overflowed) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    overflowed = true;
    return std::numeric_limits<int64_t>::max();
  }
  return sum;
}

int64_t addSaturated(int64_t a, int64_t b) {
  bool overflowed = false;
  return addSaturated(a, b, overflowed);
}

// Returns "" when `path` is missing or a regular file (following symlinks), else why the
// ledger must not read or write it.
std::string notARegularFile(const std::string& path, int& stat_errno) {
  struct stat info {};
  stat_errno = 0;
  if (::stat(path.c_str(), &info) != 0) {
    stat_errno = errno;
    return "";
  }
  if (S_ISREG(info.st_mode)) return "";
  const std::string kind = S_ISDIR(info.st_mode) ? "is a directory" : "is not a regular file";
  return "budget state file " + path + " " + kind +
         "; set state_file to the path of a file, e.g. " +
         (S_ISDIR(info.st_mode) ? path + "/budget-state.json"
                                : "/var/lib/hfchain/budget-state.json") +
         ". Until then budgets are counted in memory only and nothing is written there";
}

// Reads a window start; a value above INT64_MAX is returned as INT64_MAX, which is in the
// future for any clock.
int64_t readStart(const nlohmann::json& start) {
  if (start.is_number_unsigned() &&
      start.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return start.get<int64_t>();
}

bool isValidCount(const nlohmann::json& count) {
  if (count.is_number_unsigned())
    return count.get<uint64_t>() <= static_cast<uint64_t>(kMaxStateTokens);
  if (!count.is_number_integer()) return false;
  const int64_t value = count.get<int64_t>();
  return value >= 0 && value <= kMaxStateTokens;
}

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
    bool overflowed = false;
    const int64_t total = addSaturated(addSaturated(current.settled, current.reserved, overflowed),
                                       tokens, overflowed);
    // A sum that does not fit in int64_t exceeds every limit. Only accepted reservations add
    // to the reserved count, so that count cannot overflow either.
    if (overflowed || total > rule.limit_tokens) {
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
      window->second.reserved =
          std::max<int64_t>(window->second.reserved - pending->second.tokens, 0);
      window->second.settled = addSaturated(window->second.settled, actual_tokens);
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
    return addSaturated(window->second.settled, window->second.reserved);
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
        // A settled count above the bound that load() accepts is written as the bound, so the
        // file stays loadable and the count still exceeds every limit.
        entry["used"][key.scope_value] = std::min(window.settled, kMaxStateTokens);
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
  int stat_errno = 0;
  if (std::string error = notARegularFile(state_file_, stat_errno); !error.empty()) {
    std::lock_guard writer(flush_mutex_);
    not_a_file_error_ = error;
    return error;
  }
  if (stat_errno == ENOENT) return "";
  if (stat_errno != 0) {
    return "budget state file " + state_file_ + " cannot be inspected (" + errnoText(stat_errno) +
           "); check the path and the permissions of its folders. Budgets start empty";
  }
  std::string problem;
  std::string text;
  std::vector<std::string> dropped;
  std::ifstream in(state_file_, std::ios::binary);
  if (!in) {
    problem = "cannot be read (" + errnoText(errno) + ")";
  } else {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
    std::lock_guard lock(mutex_);
    problem = applyStateLocked(text, now_unix_s, dropped);
    if (!problem.empty()) buckets_.clear();
  }
  if (problem.empty()) {
    if (dropped.empty()) return "";
    std::string list;
    constexpr size_t kListed = 5;
    for (size_t i = 0; i < dropped.size() && i < kListed; ++i)
      list += (i == 0 ? "" : "; ") + dropped[i];
    if (dropped.size() > kListed)
      list += "; and " + std::to_string(dropped.size() - kListed) + " more";
    return "budget state file " + state_file_ + ": dropped " + std::to_string(dropped.size()) +
           " window" + (dropped.size() == 1 ? "" : "s") + " (" + list +
           "), loaded the other counts. Check the system clock, and do not edit the file by hand";
  }
  // The file stays where it is until the first write, so that a run that never settles
  // (`hfchain check`, say) changes nothing on disk.
  {
    std::lock_guard writer(flush_mutex_);
    move_aside_before_write_ = true;
  }
  return "budget state file " + state_file_ + " " + problem +
         ". Budgets start empty. The file is kept: the first write of new counts moves it to " +
         state_file_ +
         ".corrupt (or .corrupt.1, .corrupt.2, ... when that exists). To keep the "
         "used counts, stop hfchain and restore a good copy; to silence this message, delete "
         "the file";
}

std::string Ledger::applyStateLocked(const std::string& text, int64_t now_unix_s,
                                     std::vector<std::string>& dropped) {
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
        if (!isValidCount(count))
          return "has an invalid count " + count.dump() + " for \"" + value + "\" in " + where +
                 ": expected a whole number of tokens from 0 to " + withThousands(kMaxStateTokens);
      }
      if (!matches) continue;
      const int64_t start = readStart(window["start"]);
      const std::string window_name = "window " + window["start"].dump() + " of " + where;
      // A start after now comes from a clock that was ahead or from an edited file. Counting
      // it would charge a window that has not begun.
      if (start > now_unix_s) {
        dropped.push_back(window_name + " starts in the future (now " + std::to_string(now_unix_s) +
                          ")");
        continue;
      }
      if (start % rule->window_seconds != 0) {
        dropped.push_back(window_name + " is not a multiple of window_seconds " +
                          std::to_string(rule->window_seconds));
        continue;
      }
      if (start + rule->window_seconds <= now_unix_s) continue;
      const size_t index = static_cast<size_t>(rule - rules_.begin());
      for (const auto& [value, count] : window["used"].items()) {
        int64_t& settled = buckets_[{index, value}][start].settled;
        settled = addSaturated(settled, count.get<int64_t>());
      }
    }
  }
  return "";
}

std::string Ledger::moveAsideLocked() {
  // The first free name, so that an earlier backup is never replaced. renameat2 with
  // RENAME_NOREPLACE makes the check and the move one step.
  constexpr int kMaxBackups = 1000;
  for (int n = 0; n < kMaxBackups; ++n) {
    const std::string aside = state_file_ + ".corrupt" + (n == 0 ? "" : "." + std::to_string(n));
    if (::renameat2(AT_FDCWD, state_file_.c_str(), AT_FDCWD, aside.c_str(), RENAME_NOREPLACE) == 0)
      return "";
    // Some file systems do not support RENAME_NOREPLACE; a hard link also fails on an
    // existing name, and removing the old name then completes the move.
    if (errno == EINVAL && ::link(state_file_.c_str(), aside.c_str()) == 0) {
      ::unlink(state_file_.c_str());
      return "";
    }
    if (errno == EEXIST) continue;
    // The file is gone already (the operator removed it), so there is nothing to keep.
    if (errno == ENOENT) return "";
    return "cannot move the unreadable budget state file " + state_file_ + " aside to " + aside +
           " (" + errnoText(errno) +
           "), so it was not replaced; move or delete it, or check the folder's permissions";
  }
  return "cannot move the unreadable budget state file " + state_file_ + " aside: " + state_file_ +
         ".corrupt to .corrupt." + std::to_string(kMaxBackups - 1) +
         " all exist; delete old backups";
}

std::string Ledger::writeStateFile(const std::string& text) {
  if (!not_a_file_error_.empty()) return not_a_file_error_;
  // The path may have become a directory or a device since load(); rename() would replace a
  // device or a FIFO.
  int stat_errno = 0;
  if (std::string error = notARegularFile(state_file_, stat_errno); !error.empty()) return error;
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
  if (move_aside_before_write_) {
    if (std::string error = moveAsideLocked(); !error.empty()) {
      ::unlink(temp.c_str());
      return error;
    }
    move_aside_before_write_ = false;
  }
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
