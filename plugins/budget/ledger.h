// Token budgets per caller key, per tenant and global, counted over fixed time windows, with
// reservations taken before a request and settled with the actual use after it. The semantics
// are described in docs/budget-ledger.md.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace hfchain::plugins::budget {

enum class Scope { kGlobal, kTenant, kKey };

// The largest token count a state file may hold for one scope value and window. It is far
// above any limit the config accepts (10^12), so a count clamped to it still exceeds every
// limit, and far below INT64_MAX, so sums of a few such counts cannot overflow.
constexpr int64_t kMaxStateTokens = 1'000'000'000'000'000;

// Returns "global", "tenant" or "key", the spelling used in the state file.
const char* scopeName(Scope scope);

struct BudgetRule {
  std::string name;  // unique, used in errors, metrics and the state file
  Scope scope = Scope::kGlobal;
  int64_t limit_tokens = 0;  // > 0; input + output tokens per window
  // Windows are aligned to multiples of this since the Unix epoch, so 86400 gives UTC days.
  int64_t window_seconds = 86400;

  bool operator==(const BudgetRule&) const = default;
};

// One window's share of a reservation.
struct Hold {
  size_t rule_index = 0;     // index into the ledger's rules
  std::string scope_value;   // "" for a global rule
  int64_t window_start = 0;  // Unix seconds
};

// Tokens set aside by Ledger::reserve. Copyable; settle it once with the actual use. It only
// has meaning for the ledger that made it: settling it into another ledger does nothing.
struct Reservation {
  uint64_t id = 0;
  int64_t tokens = 0;
  std::vector<Hold> holds;  // one per rule that applied
};

// The first rule, in configuration order, that a reservation would have overspent.
struct Rejection {
  std::string rule;
  Scope scope = Scope::kGlobal;
  std::string scope_value;  // key id or tenant; "" for a global rule or a caller without one
  int64_t used = 0;         // settled tokens in the current window
  int64_t reserved = 0;     // tokens held by requests in flight
  int64_t requested = 0;
  int64_t limit = 0;
  int64_t resets_in_seconds = 0;  // until the current window ends

  // Returns one line for the caller, e.g. `budget "daily-per-key" for key 3f2a: 9,800 used +
  // 400 reserved + 500 requested exceeds 10,000 tokens; resets in 3h12m`.
  std::string describe() const;
};

// Thread-safe: every public method may be called from any number of threads at once.
//
// A kKey rule applies to every request. A request without a key id is counted under the
// value "", so all such callers share one bucket. kTenant rules count requests without a
// tenant the same way.
//
// Settled use is written to `state_file` as versioned JSON. settle() writes it at most once
// per second of the caller's clock, from the settling thread; flush() and the destructor
// write it at once. Reservations are not written, so a request in flight at a crash is not
// charged, and use settled since the last write is lost.
class Ledger {
 public:
  // `rules` must already be validated: unique names, limits and windows above 0.
  // `state_file` empty keeps everything in memory only.
  Ledger(std::vector<BudgetRule> rules, std::string state_file);
  // Writes the state file if anything changed since the last write; errors are dropped.
  ~Ledger();

  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Reads the state file; it never moves, writes or deletes anything. Returns "" on success
  // or when the file does not exist; otherwise a message naming the file and the fix:
  // - a path that is not a regular file (a directory, say): the ledger counts in memory
  //   only and every write returns this error, so nothing is written over that path;
  // - a file that cannot be read or parsed, or contains a count outside 0..kMaxStateTokens: the
  //   ledger starts empty, and its first write moves the file aside to the first free name
  //   of `<state_file>.corrupt`, `<state_file>.corrupt.1`, ... before replacing it;
  // - windows whose start is in the future or not a multiple of the rule's window length:
  //   they are dropped, the rest is loaded and the message lists the dropped windows.
  // Rules no longer configured, rules whose scope or window length changed and windows that
  // have ended are ignored silently. Call it once, before the first reserve().
  std::string load(int64_t now_unix_s);

  // Reserves `tokens` (negative counts as 0) in the current window of every rule, or of none:
  // a rule whose settled + reserved + requested tokens would exceed its limit rejects the
  // whole reservation and nothing is held. A sum above INT64_MAX counts as exceeding it.
  std::variant<Reservation, Rejection> reserve(std::string_view key_id, std::string_view tenant,
                                               int64_t tokens, int64_t now_unix_s);

  // Replaces the reservation by `actual_tokens` (negative counts as 0), above or below what
  // was reserved; the settled count stops at INT64_MAX instead of wrapping. Each reservation is
  // settled once: a second call, or a call for a reservation this ledger did not make, does
  // nothing. A window that has rolled over since the reservation is still charged while the ledger
  // keeps it, which is until one more window length has passed. After that the actual use is
  // charged nowhere.
  void settle(const Reservation& reservation, int64_t actual_tokens, int64_t now_unix_s);

  // Writes the state file when anything changed since the last write: a temporary file in
  // the same folder, fsync, then rename over the old one, so readers see the old or the new
  // file, never a partial one. Returns "" or an error naming the file. A path that is not a
  // regular file is never written, and the error names it.
  std::string flush();

  // Writes the state file a last time and stops writing it, for a ledger that a ledger with
  // other rules replaces on the same file. Reservations and settles still work in memory, so
  // requests in flight finish, but their use no longer reaches the file.
  void retire();
  // Returns the error of the last automatic write from settle(), or "" if it succeeded.
  std::string lastFlushError() const;

  // Returns settled + reserved tokens of `rule` for `scope_value` in the window that contains
  // `now_unix_s`, at most INT64_MAX; 0 for an unknown rule. Use "" as the scope value of a global
  // rule.
  int64_t used(std::string_view rule, std::string_view scope_value, int64_t now_unix_s) const;

  // Returns the number of (rule, scope value) buckets held in memory.
  size_t bucketCount() const;

 private:
  struct Window {
    int64_t settled = 0;
    int64_t reserved = 0;
  };
  // The windows of one (rule, scope value), keyed by window start. There is usually one, and
  // two while a reservation made in the previous window is still in flight.
  using Bucket = std::map<int64_t, Window>;
  struct BucketKey {
    size_t rule_index;
    std::string scope_value;
    bool operator==(const BucketKey&) const = default;
  };
  struct BucketKeyHash {
    size_t operator()(const BucketKey& key) const;
  };
  struct Pending {
    std::vector<Hold> holds;
    int64_t tokens = 0;
  };

  int64_t windowStart(const BudgetRule& rule, int64_t now_unix_s) const;
  std::string scopeValue(const BudgetRule& rule, std::string_view key_id,
                         std::string_view tenant) const;
  void sweepLocked(int64_t now_unix_s);
  std::string serializeLocked() const;
  // Fills the buckets from the file's text. Returns "" or why the whole file is invalid, and
  // appends to `dropped` the windows left out for a reason worth reporting.
  std::string applyStateLocked(const std::string& text, int64_t now_unix_s,
                               std::vector<std::string>& dropped);
  std::string writeStateFile(const std::string& text);  // requires flush_mutex_
  std::string moveAsideLocked();                        // requires flush_mutex_
  std::string writeIfChanged();                         // requires flush_mutex_
  void flushIfDue(int64_t now_unix_s);

  const std::vector<BudgetRule> rules_;
  const std::string state_file_;

  mutable std::mutex mutex_;
  std::unordered_map<BucketKey, Bucket, BucketKeyHash> buckets_;  // guarded by mutex_
  std::unordered_map<uint64_t, Pending> pending_;                 // guarded by mutex_
  uint64_t generation_ = 0;          // bumped on every settled change; guarded by mutex_
  uint64_t flushed_generation_ = 0;  // generation last written; guarded by mutex_
  int64_t last_flush_s_ = 0;         // caller clock of the last automatic write; guarded
  int64_t last_sweep_s_ = 0;         // guarded by mutex_
  std::string last_flush_error_;     // guarded by mutex_

  // Serializes writers of the state file; always taken before mutex_, never while holding it.
  std::mutex flush_mutex_;
  bool retired_ = false;  // guarded by flush_mutex_
  // Set by load() when the file at state_file_ could not be used; guarded by flush_mutex_.
  bool move_aside_before_write_ = false;  // the file is unreadable and must be kept
  std::string not_a_file_error_;          // the path is not a regular file, so never write
};

}  // namespace hfchain::plugins::budget
