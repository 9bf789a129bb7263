// A flat hash table from token strings to ids. The strings live in one buffer and the slots
// are a plain array, so a lookup touches about two cache lines. A node-based map touches three
// or more, and those misses dominated the load time of large vocabularies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hfchain::tokenizer_detail {

class TokenTable {
 public:
  void reserve(std::size_t count);

  // Sets the id of a token. A later call for the same token replaces the id, the same as a
  // repeated key in the vocabulary object does in the Rust library.
  void insertOrAssign(std::string_view token, int32_t id);

  // Returns the id of a token, or -1.
  int32_t find(std::string_view token) const;

  std::size_t size() const { return ids_.size(); }

  // Calls visit(token, id) for each entry, in insertion order.
  template <typename Visit>
  void forEach(Visit visit) const {
    for (std::size_t i = 0; i < ids_.size(); ++i) visit(tokenAt(i), ids_[i]);
  }

 private:
  struct Slot {
    uint32_t hash = 0;
    int32_t entry = -1;  // index into spans_ and ids_, -1 when empty
  };

  static uint64_t hashOf(std::string_view token);
  std::string_view tokenAt(std::size_t entry) const {
    return std::string_view(arena_).substr(spans_[entry].first, spans_[entry].second);
  }
  // Returns the slot of the token, or of the empty slot where it would go.
  std::size_t slotFor(std::string_view token, uint64_t hash) const;
  void rehash(std::size_t slot_count);

  std::string arena_;
  std::vector<std::pair<uint32_t, uint32_t>> spans_;  // offset and length in arena_
  std::vector<int32_t> ids_;
  std::vector<Slot> slots_;
};

}  // namespace hfchain::tokenizer_detail
