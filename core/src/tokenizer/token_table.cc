// Open addressing with linear probing over a power-of-two slot array.
#include "tokenizer/token_table.h"

namespace hfchain::tokenizer_detail {

uint64_t TokenTable::hashOf(std::string_view token) {
  // FNV-1a, then a multiply-xorshift finish so that the low bits used as the index mix well.
  uint64_t hash = 0xCBF29CE484222325ull;
  for (char c : token) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  hash ^= hash >> 32;
  hash *= 0x9E3779B97F4A7C15ull;
  hash ^= hash >> 29;
  return hash;
}

void TokenTable::reserve(std::size_t count) {
  spans_.reserve(count);
  ids_.reserve(count);
  std::size_t slot_count = 16;
  while (slot_count < count * 2) slot_count *= 2;
  if (slot_count > slots_.size()) rehash(slot_count);
}

std::size_t TokenTable::slotFor(std::string_view token, uint64_t hash) const {
  std::size_t mask = slots_.size() - 1;
  std::size_t i = static_cast<std::size_t>(hash) & mask;
  auto short_hash = static_cast<uint32_t>(hash >> 32);
  while (slots_[i].entry >= 0) {
    if (slots_[i].hash == short_hash &&
        tokenAt(static_cast<std::size_t>(slots_[i].entry)) == token) {
      return i;
    }
    i = (i + 1) & mask;
  }
  return i;
}

void TokenTable::rehash(std::size_t slot_count) {
  slots_.assign(slot_count, Slot{});
  for (std::size_t entry = 0; entry < ids_.size(); ++entry) {
    std::string_view token = tokenAt(entry);
    uint64_t hash = hashOf(token);
    std::size_t i = slotFor(token, hash);
    slots_[i] = Slot{static_cast<uint32_t>(hash >> 32), static_cast<int32_t>(entry)};
  }
}

void TokenTable::insertOrAssign(std::string_view token, int32_t id) {
  if ((ids_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  uint64_t hash = hashOf(token);
  std::size_t i = slotFor(token, hash);
  if (slots_[i].entry >= 0) {
    ids_[static_cast<std::size_t>(slots_[i].entry)] = id;
    return;
  }
  spans_.emplace_back(static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(token.size()));
  arena_.append(token);
  ids_.push_back(id);
  slots_[i] = Slot{static_cast<uint32_t>(hash >> 32), static_cast<int32_t>(ids_.size() - 1)};
}

int32_t TokenTable::find(std::string_view token) const {
  if (slots_.empty()) return -1;
  std::size_t i = slotFor(token, hashOf(token));
  return slots_[i].entry >= 0 ? ids_[static_cast<std::size_t>(slots_[i].entry)] : -1;
}

}  // namespace hfchain::tokenizer_detail
