// A PCRE2 regular expression compiled with UTF, UCP and JIT, used by the Split pre-tokenizer
// and the Replace normalizer in place of the Oniguruma engine of the Rust library.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hfchain::tokenizer_detail {

class Regex {
 public:
  // Compiles a pattern. Returns nullptr and sets error on failure.
  static std::unique_ptr<Regex> compile(std::string_view pattern, std::string& error);

  // Returns an escaped pattern that matches the literal text.
  static std::string escape(std::string_view literal);

  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of all non-overlapping matches in valid UTF-8 text.
  // Empty matches are dropped: no pattern of the supported files can produce one, and an empty
  // piece would be dropped later anyway.
  void findAll(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const;

 private:
  explicit Regex(void* code) : code_(code) {}

  void* code_;  // pcre2_code_8*
};

}  // namespace hfchain::tokenizer_detail
