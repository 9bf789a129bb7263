// The BPE model of a tokenizer.json: vocabulary, merge ranks and the per-word merge loop, with
// a bounded word cache shared by all threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/token_table.h"

namespace hfchain::tokenizer_detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Open-addressing map from a pair of token ids to the rank and id of their merge.
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t new_id = 0;
  };

  void reserve(std::size_t count);
  // Sets the merge of (left, right); a later merge of the same pair replaces the earlier one.
  void insertOrAssign(int32_t left, int32_t right, int32_t rank, int32_t new_id);
  const Entry* find(int32_t left, int32_t right) const;

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t keyOf(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void grow();

  std::vector<Entry> slots_;
  std::size_t size_ = 0;
};

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  BpeModel(TokenTable vocab, BpeOptions options);

  void reserveMerges(std::size_t count);

  // Adds a merge given the two token strings; its rank is the order of the calls. Returns an
  // error message when a part or the merged token is missing from the vocabulary.
  std::optional<std::string> addMerge(std::string_view left, std::string_view right);

  // Checks the options against the vocabulary and builds the lookup tables. Returns an error
  // message on failure.
  std::optional<std::string> finish();

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& ids) const;

  std::size_t vocabularySize() const { return vocab_.size(); }
  std::optional<int32_t> tokenToId(std::string_view token) const;
  const std::vector<std::string>& idToToken() const { return id_to_token_; }

 private:
  // Words up to this many bytes are cached. Long words are mostly runs of CJK letters, which
  // the pre-tokenizers of Llama 3 and Qwen 3 keep whole, and they repeat in chat histories.
  static constexpr std::size_t kMaxCachedWordBytes = 1024;
  static constexpr std::size_t kCacheShards = 16;
  // Bytes of words and ids per shard, so the whole cache stays under about 32 MiB.
  static constexpr std::size_t kMaxBytesPerShard = 2 * 1024 * 1024;

  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
    std::size_t bytes = 0;
  };

  void tokenizeUncached(std::string_view word, std::vector<int32_t>& ids) const;

  void mergeWord(std::string_view word, std::vector<int32_t>& ids) const;
  void addInitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const;

  TokenTable vocab_;
  BpeOptions options_;
  std::vector<std::string> id_to_token_;
  MergeTable merges_;
  int32_t merge_count_ = 0;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_fallback_ids_{};
  // Ids of single code points below U+0800, -1 when absent. Only filled when no subword prefix
  // or suffix changes the lookup.
  std::vector<int32_t> small_code_point_ids_;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace hfchain::tokenizer_detail
