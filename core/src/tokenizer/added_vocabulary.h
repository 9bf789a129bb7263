// Added tokens of a tokenizer.json and the leftmost-longest matcher that splits them out of
// the text before normalization (or after it, for tokens marked "normalized").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hfchain::tokenizer_detail {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A part of the input: either plain text to normalize and tokenize, or an added token id.
struct Segment {
  std::size_t start = 0;
  std::size_t end = 0;
  int32_t token_id = -1;  // -1 for plain text
};

class AddedTokenMatcher {
 public:
  void add(const AddedToken& token);
  bool empty() const { return tokens_.empty(); }

  // Splits text at the added tokens with the rules of the Rust library. The leftmost match
  // wins, and at one position the longest token. Matches do not overlap. single_word rejects
  // a match inside a word, and lstrip and rstrip widen a match over the whitespace beside it.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token_index = -1;
  };

  // Returns the token index and end of the longest token that starts at pos, or -1.
  std::pair<int32_t, std::size_t> longestAt(std::string_view text, std::size_t pos) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

}  // namespace hfchain::tokenizer_detail
