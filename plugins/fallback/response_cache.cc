// LRU list plus hash index; expired entries are dropped when they are looked up or reach
// the end of the list.
#include "response_cache.h"

#include <nlohmann/json.hpp>

namespace hfchain::plugins::fallback {
namespace {

// The generation parameters that take part in the key. The ABI reads parameters by name
// only, so the list is fixed here.
// NOTE: two requests that differ only in a parameter missing from this list share a key.
constexpr const char* kKeyParameters[] = {"max_new_tokens",
                                          "temperature",
                                          "top_p",
                                          "top_k",
                                          "typical_p",
                                          "min_p",
                                          "repetition_penalty",
                                          "frequency_penalty",
                                          "presence_penalty",
                                          "stop",
                                          "seed",
                                          "do_sample",
                                          "truncate",
                                          "return_full_text",
                                          "watermark",
                                          "best_of",
                                          "grammar",
                                          "response_format",
                                          "tools",
                                          "tool_choice",
                                          "logprobs",
                                          "top_logprobs",
                                          "top_n_tokens",
                                          "n",
                                          "decoder_input_details"};

}  // namespace

std::string cacheKey(const sdk::Request& request) {
  nlohmann::json key = nlohmann::json::object();  // an object keeps its keys sorted
  key["model"] = std::string(request.model());
  const size_t count = request.messageCount();
  if (count > 0) {
    nlohmann::json messages = nlohmann::json::array();
    for (size_t i = 0; i < count; ++i) {
      auto [role, content] = request.message(i);
      messages.push_back({{"role", std::string(role)}, {"content", std::string(content)}});
    }
    key["messages"] = std::move(messages);
  } else {
    key["inputs"] = std::string(request.inputs());
  }
  nlohmann::json parameters = nlohmann::json::object();
  for (const char* name : kKeyParameters) {
    if (auto value = request.param(name)) parameters[name] = *value;
  }
  key["parameters"] = std::move(parameters);
  return key.dump();
}

std::optional<CachedAnswer> ResponseCache::find(const std::string& key, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  if (now_ms - it->second->stored_ms >= ttl_ms_) {
    entries_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->answer;
}

void ResponseCache::store(const std::string& key, CachedAnswer answer, int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    it->second->answer = std::move(answer);
    it->second->stored_ms = now_ms;
    entries_.splice(entries_.begin(), entries_, it->second);
    return;
  }
  entries_.push_front(Entry{key, std::move(answer), now_ms});
  index_[key] = entries_.begin();
  while (entries_.size() > max_entries_) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
}

size_t ResponseCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace hfchain::plugins::fallback
