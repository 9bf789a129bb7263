// BPE merge loop with the same tie-breaking as the Rust library: the pair with the lowest
// merge rank merges first, and among equal ranks the leftmost pair.
#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>

#include "tokenizer/unicode_text.h"

namespace hfchain::tokenizer_detail {

void MergeTable::reserve(std::size_t count) {
  std::size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  slots_.assign(capacity, Entry{});
  size_ = 0;
}

void MergeTable::grow() {
  std::vector<Entry> old = std::move(slots_);
  reserve(old.size());
  for (const Entry& entry : old) {
    if (entry.key != kEmpty) {
      insertOrAssign(static_cast<int32_t>(entry.key >> 32), static_cast<int32_t>(entry.key),
                     entry.rank, entry.new_id);
    }
  }
}

void MergeTable::insertOrAssign(int32_t left, int32_t right, int32_t rank, int32_t new_id) {
  if (slots_.empty() || (size_ + 1) * 2 > slots_.size()) grow();
  uint64_t key = keyOf(left, right);
  std::size_t mask = slots_.size() - 1;
  std::size_t i = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;
  while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = Entry{key, rank, new_id};
}

const MergeTable::Entry* MergeTable::find(int32_t left, int32_t right) const {
  if (slots_.empty()) return nullptr;
  uint64_t key = keyOf(left, right);
  std::size_t mask = slots_.size() - 1;
  std::size_t i = (key * 0x9E3779B97F4A7C15ull) >> 20 & mask;
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return &slots_[i];
    i = (i + 1) & mask;
  }
  return nullptr;
}

BpeModel::BpeModel(TokenTable vocab, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {}

void BpeModel::reserveMerges(std::size_t count) { merges_.reserve(count); }

std::optional<std::string> BpeModel::addMerge(std::string_view left, std::string_view right) {
  int32_t left_id = vocab_.find(left);
  if (left_id < 0) {
    return "merge part '" + std::string(left) + "' is not in the vocabulary";
  }
  int32_t right_id = vocab_.find(right);
  if (right_id < 0) {
    return "merge part '" + std::string(right) + "' is not in the vocabulary";
  }
  // The right part carries the continuing-subword prefix, which the merged token drops.
  std::string_view right_tail = right;
  const std::string& prefix = options_.continuing_subword_prefix;
  if (!prefix.empty() && right_tail.starts_with(prefix)) right_tail.remove_prefix(prefix.size());
  thread_local std::string merged;
  merged.assign(left);
  merged.append(right_tail);
  int32_t merged_id = vocab_.find(merged);
  if (merged_id < 0) return "merged token '" + merged + "' is not in the vocabulary";
  merges_.insertOrAssign(left_id, right_id, merge_count_++, merged_id);
  return std::nullopt;
}

std::optional<std::string> BpeModel::finish() {
  int32_t max_id = -1;
  vocab_.forEach([&](std::string_view, int32_t id) { max_id = std::max(max_id, id); });
  id_to_token_.assign(static_cast<std::size_t>(max_id + 1), std::string());
  vocab_.forEach([&](std::string_view token, int32_t id) {
    id_to_token_[static_cast<std::size_t>(id)] = token;
  });

  if (options_.unk_token) {
    int32_t id = vocab_.find(*options_.unk_token);
    if (id < 0) return "unk_token '" + *options_.unk_token + "' is not in the vocabulary";
    unk_id_ = id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_fallback_ids_[static_cast<std::size_t>(b)] = vocab_.find(std::string_view(name));
  }
  if (options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty()) {
    small_code_point_ids_.assign(0x800, -1);
    std::string utf8;
    for (char32_t cp = 0; cp < 0x800; ++cp) {
      utf8.clear();
      appendUtf8(utf8, cp);
      small_code_point_ids_[cp] = vocab_.find(utf8);
    }
  }
  return std::nullopt;
}

std::optional<int32_t> BpeModel::tokenToId(std::string_view token) const {
  int32_t id = vocab_.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (word.size() > kMaxCachedWordBytes) {
    tokenizeUncached(word, ids);
    return;
  }
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    auto it = shard.words.find(word);
    if (it != shard.words.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::size_t first = ids.size();
  tokenizeUncached(word, ids);
  std::size_t entry_bytes = word.size() + (ids.size() - first) * sizeof(int32_t);
  std::lock_guard<std::mutex> lock(shard.mutex);
  // A full shard starts over: simpler than LRU, and frequent words come back at once.
  if (shard.bytes + entry_bytes > kMaxBytesPerShard) {
    shard.words.clear();
    shard.bytes = 0;
  }
  auto [it, inserted] = shard.words.emplace(
      std::string(word),
      std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end()));
  if (inserted) shard.bytes += entry_bytes;
}

void BpeModel::tokenizeUncached(std::string_view word, std::vector<int32_t>& ids) const {
  if (options_.ignore_merges) {
    int32_t id = vocab_.find(word);
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
  }
  mergeWord(word, ids);
}

void BpeModel::addInitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const {
  // Mirrors the Rust library: each character is looked up (with the subword prefix unless it
  // is first, the suffix if it is last); a missing one falls back to <0xXX> byte tokens, else
  // to unk, and runs of unk are fused when fuse_unk is set. A pending unk is written only when
  // the next known character arrives, so byte-fallback tokens can precede it.
  int32_t pending_unk = -1;  // -1 when no unk is pending
  std::string lookup;
  std::size_t pos = 0;
  while (pos < word.size()) {
    std::size_t start = pos;
    std::size_t length = utf8Length(static_cast<unsigned char>(word[pos]));
    if (start + length > word.size()) length = word.size() - start;
    pos += length;
    std::string_view character = word.substr(start, length);

    int32_t id = -1;
    bool is_first = start == 0;
    bool is_last = pos >= word.size();
    if (!small_code_point_ids_.empty()) {
      std::size_t p = start;
      char32_t cp = nextCodePoint(word, p);
      if (cp < 0x800) {
        id = small_code_point_ids_[cp];
      } else {
        id = vocab_.find(character);
      }
    } else {
      lookup.clear();
      if (!is_first) lookup += options_.continuing_subword_prefix;
      lookup += character;
      if (is_last) lookup += options_.end_of_word_suffix;
      id = vocab_.find(lookup);
    }

    if (id >= 0) {
      if (pending_unk >= 0) {
        symbols.push_back(pending_unk);
        pending_unk = -1;
      }
      symbols.push_back(id);
      continue;
    }
    if (options_.byte_fallback) {
      // NOTE: like the Rust library, the lookup string includes any prefix or suffix here.
      std::string_view bytes = small_code_point_ids_.empty() ? std::string_view(lookup) : character;
      bool all_found = true;
      for (char c : bytes) {
        if (byte_fallback_ids_[static_cast<unsigned char>(c)] < 0) all_found = false;
      }
      if (all_found) {
        for (char c : bytes) {
          symbols.push_back(byte_fallback_ids_[static_cast<unsigned char>(c)]);
        }
        continue;
      }
    }
    if (unk_id_) {
      // Fusing keeps the pending unk, which then covers this character too.
      if (pending_unk >= 0 && !options_.fuse_unk) symbols.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
}

namespace {

struct MergeCandidate {
  int32_t rank;
  uint32_t pos;
  int32_t new_id;
};

struct CandidateOrder {
  // std::priority_queue pops the largest element, so "greater" means lower priority.
  bool operator()(const MergeCandidate& a, const MergeCandidate& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
  }
};

}  // namespace

void BpeModel::mergeWord(std::string_view word, std::vector<int32_t>& ids) const {
  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  addInitialSymbols(word, symbols);
  std::size_t count = symbols.size();
  if (count < 2) {
    ids.insert(ids.end(), symbols.begin(), symbols.end());
    return;
  }

  // Doubly linked list over the symbols; a merged-away symbol gets alive = false.
  thread_local std::vector<int32_t> prev;
  thread_local std::vector<int32_t> next;
  thread_local std::vector<char> alive;
  prev.resize(count);
  next.resize(count);
  alive.assign(count, 1);
  for (std::size_t i = 0; i < count; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < count ? static_cast<int32_t>(i + 1) : -1;
  }

  thread_local std::vector<MergeCandidate> heap_storage;
  heap_storage.clear();
  std::priority_queue<MergeCandidate, std::vector<MergeCandidate>, CandidateOrder> queue(
      CandidateOrder{}, std::move(heap_storage));
  for (std::size_t i = 0; i + 1 < count; ++i) {
    if (const MergeTable::Entry* merge = merges_.find(symbols[i], symbols[i + 1])) {
      queue.push(MergeCandidate{merge->rank, static_cast<uint32_t>(i), merge->new_id});
    }
  }

  while (!queue.empty()) {
    MergeCandidate top = queue.top();
    queue.pop();
    std::size_t pos = top.pos;
    if (!alive[pos] || next[pos] < 0) continue;
    auto right = static_cast<std::size_t>(next[pos]);
    // Skip entries that went stale because a neighbour merged since they were queued.
    const MergeTable::Entry* current = merges_.find(symbols[pos], symbols[right]);
    if (current == nullptr || current->new_id != top.new_id) continue;

    symbols[pos] = top.new_id;
    alive[right] = 0;
    next[pos] = next[right];
    if (next[right] >= 0) prev[static_cast<std::size_t>(next[right])] = static_cast<int32_t>(pos);

    if (prev[pos] >= 0) {
      auto left = static_cast<std::size_t>(prev[pos]);
      if (const MergeTable::Entry* merge = merges_.find(symbols[left], symbols[pos])) {
        queue.push(MergeCandidate{merge->rank, static_cast<uint32_t>(left), merge->new_id});
      }
    }
    if (next[pos] >= 0) {
      auto after = static_cast<std::size_t>(next[pos]);
      if (const MergeTable::Entry* merge = merges_.find(symbols[pos], symbols[after])) {
        queue.push(MergeCandidate{merge->rank, static_cast<uint32_t>(pos), merge->new_id});
      }
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (alive[i]) ids.push_back(symbols[i]);
  }
}

}  // namespace hfchain::tokenizer_detail
