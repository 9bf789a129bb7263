// The chat template lexer: splits Jinja source into text and tag tokens, applying the
// whitespace control that transformers configures (trim_blocks, lstrip_blocks, `-` markers).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hfchain::chat_template {

enum class TokenKind {
  kText,        // literal template text, after whitespace control
  kOutputOpen,  // {{
  kOutputClose,
  kBlockOpen,  // {%
  kBlockClose,
  kName,
  kString,  // value holds the unescaped text
  kInteger,
  kFloat,
  kOperator,  // punctuation and operators: + - * / // % ** ~ == != < > <= >= = ( ) [ ] { } , . : |
  kEnd,
};

struct Token {
  TokenKind kind;
  std::string value;
  std::size_t offset;  // byte offset in the source, for error positions
};

// Maps byte offsets to 1-based line and column numbers (columns count bytes).
class SourcePositions {
 public:
  explicit SourcePositions(std::string_view source);
  std::size_t line(std::size_t offset) const;
  std::size_t column(std::size_t offset) const;

 private:
  std::vector<std::size_t> line_starts_;
};

// The error the lexer and parser throw; ChatTemplate::parse turns it into an Error that
// names the line and column.
struct SyntaxError {
  std::string message;
  std::size_t offset;
};

// Splits source into tokens ending with one kEnd token. Throws SyntaxError.
std::vector<Token> tokenize(std::string_view source);

}  // namespace hfchain::chat_template
