// Jinja lexing with the environment transformers uses for chat templates
// (transformers/utils/chat_template_utils.py: trim_blocks=True, lstrip_blocks=True) and
// Jinja's default keep_trailing_newline=False.
#include "chat_template/lexer.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/unicode_text.h"

namespace hfchain::chat_template {

SourcePositions::SourcePositions(std::string_view source) {
  line_starts_.push_back(0);
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\n') line_starts_.push_back(i + 1);
  }
}

std::size_t SourcePositions::line(std::size_t offset) const {
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  return static_cast<std::size_t>(it - line_starts_.begin());
}

std::size_t SourcePositions::column(std::size_t offset) const {
  return offset - line_starts_[line(offset) - 1] + 1;
}

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool isNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }

bool isNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(source) {
    // keep_trailing_newline=False drops one newline at the very end of the template.
    if (!source_.empty() && source_.back() == '\n') source_.remove_suffix(1);
  }

  std::vector<Token> run() {
    while (pos_ < source_.size()) {
      std::size_t tag = findTagStart(pos_);
      lexText(pos_, tag);
      if (tag == source_.size()) break;
      lexTag(tag);
    }
    tokens_.push_back(Token{TokenKind::kEnd, "", source_.size()});
    return std::move(tokens_);
  }

 private:
  std::size_t findTagStart(std::size_t from) const {
    std::size_t at = from;
    while (true) {
      at = source_.find('{', at);
      if (at == std::string_view::npos || at + 1 >= source_.size()) return source_.size();
      char next = source_[at + 1];
      if (next == '{' || next == '%' || next == '#') return at;
      ++at;
    }
  }

  // Emits the text in [begin, tag_start), applying the markers of the tag before it (stored
  // in strip_next_) and of the tag at tag_start.
  void lexText(std::size_t begin, std::size_t tag_start) {
    std::string_view text = source_.substr(begin, tag_start - begin);
    std::size_t text_begin = begin;
    if (strip_next_ == StripNext::kAllWhitespace) {
      while (!text.empty() && isSpace(text.front())) {
        text.remove_prefix(1);
        ++text_begin;
      }
    } else if (strip_next_ == StripNext::kOneNewline && !text.empty() && text.front() == '\n') {
      text.remove_prefix(1);
      ++text_begin;
    }
    strip_next_ = StripNext::kNothing;

    if (tag_start < source_.size()) {
      char kind = source_[tag_start + 1];
      char marker = tag_start + 2 < source_.size() ? source_[tag_start + 2] : '\0';
      if (marker == '-') {
        while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
      } else if ((kind == '%' || kind == '#') && marker != '+') {
        // lstrip_blocks: spaces and tabs between the start of a line and a block or comment
        // tag are removed, but only when nothing else stands on that line before the tag.
        std::size_t cut = text.size();
        while (cut > 0 && text[cut - 1] != '\n' && isSpace(text[cut - 1])) --cut;
        bool at_line_start =
            cut > 0 ? text[cut - 1] == '\n' : (text_begin == 0 || source_[text_begin - 1] == '\n');
        if (at_line_start) text = text.substr(0, cut);
      }
    }
    if (!text.empty()) tokens_.push_back(Token{TokenKind::kText, std::string(text), text_begin});
  }

  void lexTag(std::size_t start) {
    char kind = source_[start + 1];
    pos_ = start + 2;
    if (pos_ < source_.size() && (source_[pos_] == '-' || source_[pos_] == '+')) ++pos_;
    if (kind == '#') {
      lexComment(start);
      return;
    }
    bool block = kind == '%';
    std::size_t first_token = tokens_.size();
    tokens_.push_back(Token{block ? TokenKind::kBlockOpen : TokenKind::kOutputOpen, "", start});
    lexTagBody(start, block);
    // {% raw %} ... {% endraw %}: everything in between is text.
    if (block && tokens_.size() == first_token + 3 &&
        tokens_[first_token + 1].kind == TokenKind::kName &&
        tokens_[first_token + 1].value == "raw") {
      tokens_.resize(first_token);
      lexRaw(start);
    }
  }

  void lexComment(std::size_t start) {
    std::size_t close = source_.find("#}", pos_);
    if (close == std::string_view::npos) throw SyntaxError{"unclosed comment", start};
    bool strip = close > pos_ && source_[close - 1] == '-';
    bool keep = close > pos_ && source_[close - 1] == '+';
    pos_ = close + 2;
    strip_next_ = strip  ? StripNext::kAllWhitespace
                  : keep ? StripNext::kNothing
                         : StripNext::kOneNewline;
  }

  void lexRaw(std::size_t start) {
    std::size_t search = pos_;
    while (true) {
      std::size_t open = source_.find("{%", search);
      if (open == std::string_view::npos) throw SyntaxError{"missing {% endraw %}", start};
      std::size_t inner = open + 2;
      if (inner < source_.size() && (source_[inner] == '-' || source_[inner] == '+')) ++inner;
      while (inner < source_.size() && isSpace(source_[inner])) ++inner;
      if (source_.substr(inner, 6) == "endraw") {
        lexText(pos_, open);
        pos_ = open + 2;
        if (pos_ < source_.size() && (source_[pos_] == '-' || source_[pos_] == '+')) ++pos_;
        std::size_t before = tokens_.size();
        tokens_.push_back(Token{TokenKind::kBlockOpen, "", open});
        lexTagBody(open, true);
        tokens_.resize(before);
        return;
      }
      search = open + 2;
    }
  }

  // Lexes the expression tokens of a tag up to and including its closing delimiter.
  void lexTagBody(std::size_t start, bool block) {
    const char close_char = block ? '%' : '}';
    int bracket_depth = 0;
    while (true) {
      while (pos_ < source_.size() && isSpace(source_[pos_])) ++pos_;
      if (pos_ >= source_.size()) {
        throw SyntaxError{
            block ? "unclosed block tag, expected %}" : "unclosed output tag, expected }}", start};
      }
      std::string_view rest = source_.substr(pos_);
      bool marker = !rest.empty() && (rest[0] == '-' || rest[0] == '+');
      std::string_view after_marker = marker ? rest.substr(1) : rest;
      if (bracket_depth == 0 && after_marker.size() >= 2 && after_marker[0] == close_char &&
          after_marker[1] == '}') {
        tokens_.push_back(
            Token{block ? TokenKind::kBlockClose : TokenKind::kOutputClose, "", pos_});
        pos_ += marker ? 3 : 2;
        if (marker && rest[0] == '-') {
          strip_next_ = StripNext::kAllWhitespace;
        } else if (block && !marker) {
          strip_next_ = StripNext::kOneNewline;  // trim_blocks
        } else {
          strip_next_ = StripNext::kNothing;
        }
        return;
      }
      char c = rest[0];
      if (isNameStart(c)) {
        std::size_t end = pos_;
        while (end < source_.size() && isNameChar(source_[end])) ++end;
        tokens_.push_back(
            Token{TokenKind::kName, std::string(source_.substr(pos_, end - pos_)), pos_});
        pos_ = end;
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        lexNumber();
      } else if (c == '\'' || c == '"') {
        lexString();
      } else {
        lexOperator(bracket_depth);
      }
    }
  }

  void lexNumber() {
    std::size_t begin = pos_;
    std::size_t end = pos_;
    auto digits = [&] {
      while (end < source_.size() &&
             (std::isdigit(static_cast<unsigned char>(source_[end])) != 0 || source_[end] == '_')) {
        ++end;
      }
    };
    digits();
    bool is_float = false;
    if (end + 1 < source_.size() && source_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(source_[end + 1])) != 0) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < source_.size() && (source_[end] == 'e' || source_[end] == 'E')) {
      std::size_t exp = end + 1;
      if (exp < source_.size() && (source_[exp] == '+' || source_[exp] == '-')) ++exp;
      if (exp < source_.size() && std::isdigit(static_cast<unsigned char>(source_[exp])) != 0) {
        is_float = true;
        end = exp;
        digits();
      }
    }
    std::string text;
    for (char c : source_.substr(begin, end - begin)) {
      if (c != '_') text.push_back(c);
    }
    tokens_.push_back(Token{is_float ? TokenKind::kFloat : TokenKind::kInteger, text, begin});
    pos_ = end;
  }

  void lexString() {
    std::size_t begin = pos_;
    char quote = source_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= source_.size()) throw SyntaxError{"unterminated string literal", begin};
      char c = source_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      if (pos_ >= source_.size()) throw SyntaxError{"unterminated string literal", begin};
      char escape = source_[pos_++];
      switch (escape) {
        case 'n':
          value.push_back('\n');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case '0':
          value.push_back('\0');
          break;
        case '\\':
        case '\'':
        case '"':
          value.push_back(escape);
          break;
        case '\n':
          break;  // a backslash before a newline continues the line, as in Python
        case 'x':
        case 'u':
        case 'U':
          appendHexEscape(value, escape, begin);
          break;
        default:
          // Python keeps unknown escapes such as "\d" as written.
          value.push_back('\\');
          value.push_back(escape);
      }
    }
    tokens_.push_back(Token{TokenKind::kString, std::move(value), begin});
  }

  void appendHexEscape(std::string& value, char escape, std::size_t begin) {
    std::size_t length = escape == 'x' ? 2 : escape == 'u' ? 4 : 8;
    if (pos_ + length > source_.size())
      throw SyntaxError{"truncated \\" + std::string(1, escape) + " escape", begin};
    char32_t cp = 0;
    for (std::size_t i = 0; i < length; ++i) {
      char h = source_[pos_ + i];
      if (std::isxdigit(static_cast<unsigned char>(h)) == 0) {
        throw SyntaxError{"invalid \\" + std::string(1, escape) + " escape", pos_};
      }
      cp = cp * 16 +
           static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(h)) != 0
                                     ? h - '0'
                                     : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
    }
    if (cp > 0x10FFFF) throw SyntaxError{"escape is beyond U+10FFFF", pos_};
    pos_ += length;
    tokenizer_detail::appendUtf8(value, cp);
  }

  void lexOperator(int& bracket_depth) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    std::string_view rest = source_.substr(pos_);
    for (std::string_view op : kTwoChar) {
      if (rest.substr(0, 2) == op) {
        tokens_.push_back(Token{TokenKind::kOperator, std::string(op), pos_});
        pos_ += 2;
        return;
      }
    }
    char c = rest[0];
    static constexpr std::string_view kOneChar = "+-*/%~<>=()[]{},.:|";
    if (kOneChar.find(c) == std::string_view::npos) {
      throw SyntaxError{"unexpected character '" + std::string(1, c) + "'", pos_};
    }
    if (c == '(' || c == '[' || c == '{') ++bracket_depth;
    if ((c == ')' || c == ']' || c == '}') && bracket_depth > 0) --bracket_depth;
    tokens_.push_back(Token{TokenKind::kOperator, std::string(1, c), pos_});
    ++pos_;
  }

  enum class StripNext { kNothing, kOneNewline, kAllWhitespace };

  std::string_view source_;
  std::size_t pos_ = 0;
  StripNext strip_next_ = StripNext::kNothing;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace hfchain::chat_template
