// The cache tier's store: complete answers keyed by the normalized request, least recently
// used first out, each valid for a fixed time.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::fallback {

namespace sdk = hfchain::sdk;

struct CachedAnswer {
  std::vector<std::string> tokens;  // token texts in stream order
  std::string finish_reason;
};

// Thread-safe. Times are milliseconds on the host clock.
class ResponseCache {
 public:
  ResponseCache(size_t max_entries, int64_t ttl_ms) : max_entries_(max_entries), ttl_ms_(ttl_ms) {}

  // Returns the answer stored under `key` unless it is older than the TTL; a hit makes the
  // entry the most recently used.
  std::optional<CachedAnswer> find(const std::string& key, int64_t now_ms);
  // Stores or replaces the answer under `key`, evicting the least recently used entry when
  // the cache is full.
  void store(const std::string& key, CachedAnswer answer, int64_t now_ms);
  size_t size() const;

 private:
  struct Entry {
    std::string key;
    CachedAnswer answer;
    int64_t stored_ms = 0;
  };
  using List = std::list<Entry>;

  size_t max_entries_;
  int64_t ttl_ms_;
  mutable std::mutex mutex_;
  List entries_;  // most recently used first; guarded by mutex_
  std::unordered_map<std::string, List::iterator> index_;  // guarded by mutex_
};

// Returns the cache key of a request: its model, messages or inputs and generation
// parameters as JSON with sorted keys. The target and the stream flag are not part of it.
std::string cacheKey(const sdk::Request& request);

}  // namespace hfchain::plugins::fallback
