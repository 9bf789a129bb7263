// A tokenizer that reads a Hugging Face tokenizer.json and produces the same token ids as the
// Hugging Face tokenizers library (Rust). It covers the BPE pipelines used by Llama 3, Qwen 3
// and Gemma 3; docs/tokenizer.md lists the supported components and the known differences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hfchain/error.h"

namespace hfchain {

class Tokenizer;
using TokenizerConstSharedPtr = std::shared_ptr<const Tokenizer>;

// Result of Tokenizer::load: either a tokenizer or an error, never both.
struct TokenizerLoadResult {
  TokenizerConstSharedPtr tokenizer;  // null on failure
  Error error;                        // kConfigRejected with the path and reason on failure

  bool ok() const { return tokenizer != nullptr; }
};

// All methods are const and safe to call from several threads at once. The word cache inside
// is shared by all threads and guarded by sharded mutexes.
class Tokenizer {
 public:
  // Loads a tokenizer.json file. On failure the error message names the file and the reason
  // (missing file, invalid JSON, unsupported model, normalizer, pre-tokenizer, decoder or
  // post-processor type, inconsistent vocabulary or merges).
  static TokenizerLoadResult load(const std::filesystem::path& path);

  // Loads a tokenizer from the text of a tokenizer.json; source_name is used in error messages.
  static TokenizerLoadResult fromJson(std::string_view json_text, std::string_view source_name);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Encodes text to token ids. With add_special_tokens the post-processor of the file adds its
  // tokens (for example <bos> for Gemma 3). Invalid UTF-8 is not rejected: each maximal
  // invalid byte sequence is replaced with U+FFFD first, as WHATWG TextDecoder does.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;

  // Returns encode(text, add_special_tokens).size().
  std::size_t count(std::string_view text, bool add_special_tokens) const;

  // Decodes ids to text with the decoder of the file. Unknown ids are skipped; with
  // skip_special_tokens, added tokens marked special are skipped too. Byte sequences that do
  // not form valid UTF-8 come out as U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // Returns the id of a token string (added tokens first, then the model vocabulary).
  std::optional<int32_t> tokenToId(std::string_view token) const;

  // Returns the token string of an id, or nullopt for an id outside the vocabulary.
  std::optional<std::string> idToToken(int32_t id) const;

  // Returns the number of distinct tokens: the model vocabulary plus the added tokens that are
  // not in it (the Rust library's get_vocab_size(true)).
  std::size_t vocabSize() const;

  // Returns true when the text is valid UTF-8, so a caller that prefers to reject invalid
  // input can check before encode.
  static bool isValidUtf8(std::string_view text);

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace hfchain
