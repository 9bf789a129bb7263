// A recursive-descent parser for the Jinja subset. Operator precedence follows Jinja's own
// parser (jinja2/parser.py, 3.1): conditional, or, and, not, comparisons, + -, ~, * / // %,
// **, filters and tests, unary - +, then postfix access. So `a + b is defined` is
// `a + (b is defined)` and `-3|abs` is `(-3)|abs`, as in Jinja.
#include <string>
#include <utility>

#include "chat_template/ast.h"
#include "chat_template/builtins.h"
#include "chat_template/lexer.h"

namespace hfchain::chat_template {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodeList parseAll() {
    std::string stopped_at;
    NodeList nodes = parseBody({}, stopped_at);
    return nodes;
  }

 private:
  // Guards one level of recursion against kMaxParseDepth.
  class DepthGuard {
   public:
    DepthGuard(Parser& parser, std::size_t offset) : parser_(parser) {
      if (++parser_.depth_ > kMaxParseDepth) {
        throw SyntaxError{
            "template nested deeper than " + std::to_string(kMaxParseDepth) + " levels", offset};
      }
    }
    ~DepthGuard() { --parser_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& parser_;
  };

  const Token& peek(std::size_t ahead = 0) const {
    std::size_t index = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[index];
  }
  const Token& next() {
    const Token& token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }
  bool isOperator(std::string_view op, std::size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOperator && peek(ahead).value == op;
  }
  bool isName(std::string_view name, std::size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kName && peek(ahead).value == name;
  }
  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kText:
        return "text";
      case TokenKind::kOutputClose:
        return "'}}'";
      case TokenKind::kBlockClose:
        return "'%}'";
      case TokenKind::kOutputOpen:
        return "'{{'";
      case TokenKind::kBlockOpen:
        return "'{%'";
      case TokenKind::kString:
        return "string literal";
      default:
        return "'" + token.value + "'";
    }
  }
  [[noreturn]] void fail(const std::string& expected) const {
    throw SyntaxError{"expected " + expected + ", found " + describe(peek()), peek().offset};
  }
  void expectOperator(std::string_view op) {
    if (!isOperator(op)) fail("'" + std::string(op) + "'");
    next();
  }
  std::string expectName() {
    if (peek().kind != TokenKind::kName) fail("a name");
    return next().value;
  }
  void expectBlockClose() {
    if (peek().kind != TokenKind::kBlockClose) fail("'%}'");
    next();
  }

  // Parses nodes until a block tag whose name is in `stop` (left unconsumed after its name,
  // which is stored in stopped_at) or the end of the template.
  NodeList parseBody(std::initializer_list<std::string_view> stop, std::string& stopped_at) {
    NodeList nodes;
    while (true) {
      const Token& token = peek();
      if (token.kind == TokenKind::kEnd) {
        if (stop.size() != 0) {
          throw SyntaxError{
              "unexpected end of template, expected {% " + std::string(*stop.begin()) + " %}",
              token.offset};
        }
        return nodes;
      }
      if (token.kind == TokenKind::kText) {
        auto node = makeNode(NodeKind::kText, token.offset);
        node->text = token.value;
        nodes.push_back(std::move(node));
        next();
        continue;
      }
      if (token.kind == TokenKind::kOutputOpen) {
        next();
        auto node = makeNode(NodeKind::kOutput, token.offset);
        node->expr = parseExpression();
        if (peek().kind != TokenKind::kOutputClose) fail("'}}'");
        next();
        nodes.push_back(std::move(node));
        continue;
      }
      if (token.kind != TokenKind::kBlockOpen) fail("text or a tag");
      std::size_t open_offset = token.offset;
      next();
      if (peek().kind != TokenKind::kName) fail("a statement name");
      std::string keyword = peek().value;
      for (std::string_view name : stop) {
        if (keyword == name) {
          next();
          stopped_at = keyword;
          return nodes;
        }
      }
      next();
      nodes.push_back(parseStatement(keyword, open_offset));
    }
  }

  NodePtr makeNode(NodeKind kind, std::size_t offset) {
    auto node = std::make_unique<Node>();
    node->kind = kind;
    node->offset = offset;
    return node;
  }

  NodePtr parseStatement(const std::string& keyword, std::size_t offset) {
    DepthGuard guard(*this, offset);
    if (keyword == "if") return parseIf(offset);
    if (keyword == "for") return parseFor(offset);
    if (keyword == "set") return parseSet(offset);
    if (keyword == "macro") return parseMacro(offset);
    if (keyword == "filter") return parseFilterBlock(offset);
    if (keyword == "generation") {
      expectBlockClose();
      auto node = makeNode(NodeKind::kGeneration, offset);
      std::string stopped;
      node->body = parseBody({"endgeneration"}, stopped);
      expectBlockClose();
      return node;
    }
    if (keyword == "break" || keyword == "continue") {
      expectBlockClose();
      return makeNode(keyword == "break" ? NodeKind::kBreak : NodeKind::kContinue, offset);
    }
    throw SyntaxError{"unsupported statement '" + keyword + "'", offset};
  }

  NodePtr parseIf(std::size_t offset) {
    auto node = makeNode(NodeKind::kIf, offset);
    ExprPtr condition = parseExpression();
    expectBlockClose();
    while (true) {
      std::string stopped;
      NodeList body = parseBody({"elif", "else", "endif"}, stopped);
      node->branches.emplace_back(std::move(condition), std::move(body));
      if (stopped == "elif") {
        condition = parseExpression();
        expectBlockClose();
        continue;
      }
      if (stopped == "else") {
        expectBlockClose();
        node->else_body = parseBody({"endif"}, stopped);
      }
      expectBlockClose();
      return node;
    }
  }

  std::vector<std::string> parseTargets() {
    std::vector<std::string> targets{expectName()};
    while (isOperator(",")) {
      next();
      targets.push_back(expectName());
    }
    return targets;
  }

  NodePtr parseFor(std::size_t offset) {
    auto node = makeNode(NodeKind::kFor, offset);
    node->targets = parseTargets();
    if (!isName("in")) fail("'in'");
    next();
    // The iterable stops before `if`, so that `for x in xs if cond` reads as a filter.
    node->expr = parseOr();
    if (isName("if")) {
      next();
      node->condition = parseExpression();
    }
    if (isName("recursive"))
      throw SyntaxError{"recursive for loops are not supported", peek().offset};
    expectBlockClose();
    std::string stopped;
    node->body = parseBody({"else", "endfor"}, stopped);
    if (stopped == "else") {
      expectBlockClose();
      node->else_body = parseBody({"endfor"}, stopped);
    }
    expectBlockClose();
    return node;
  }

  NodePtr parseSet(std::size_t offset) {
    std::string first = expectName();
    if (isOperator(".")) {
      next();
      auto node = makeNode(NodeKind::kSet, offset);
      node->targets = {first};
      node->attribute = expectName();
      expectOperator("=");
      node->expr = parseExpression();
      expectBlockClose();
      return node;
    }
    std::vector<std::string> targets{first};
    while (isOperator(",")) {
      next();
      targets.push_back(expectName());
    }
    if (peek().kind == TokenKind::kBlockClose && targets.size() == 1) {
      next();
      auto node = makeNode(NodeKind::kSetBlock, offset);
      node->targets = std::move(targets);
      std::string stopped;
      node->body = parseBody({"endset"}, stopped);
      expectBlockClose();
      return node;
    }
    auto node = makeNode(NodeKind::kSet, offset);
    node->targets = std::move(targets);
    expectOperator("=");
    node->expr = parseTupleOrExpression();
    expectBlockClose();
    return node;
  }

  NodePtr parseMacro(std::size_t offset) {
    auto macro = std::make_shared<MacroNode>();
    macro->name = expectName();
    expectOperator("(");
    while (!isOperator(")")) {
      std::string parameter = expectName();
      ExprPtr default_value;
      if (isOperator("=")) {
        next();
        default_value = parseExpression();
      }
      macro->parameters.emplace_back(std::move(parameter), std::move(default_value));
      if (!isOperator(",")) break;
      next();
    }
    expectOperator(")");
    expectBlockClose();
    std::string stopped;
    macro->body = parseBody({"endmacro"}, stopped);
    if (peek().kind == TokenKind::kName && peek().value == macro->name) next();
    expectBlockClose();
    auto node = makeNode(NodeKind::kMacro, offset);
    node->macro = std::move(macro);
    return node;
  }

  NodePtr parseFilterBlock(std::size_t offset) {
    auto node = makeNode(NodeKind::kFilterBlock, offset);
    auto placeholder = makeExpr(ExprKind::kLiteral, offset);
    node->expr = parseFilter(std::move(placeholder));
    while (isOperator("|")) {
      next();
      node->expr = parseFilter(std::move(node->expr));
    }
    expectBlockClose();
    std::string stopped;
    node->body = parseBody({"endfilter"}, stopped);
    expectBlockClose();
    return node;
  }

  ExprPtr makeExpr(ExprKind kind, std::size_t offset) {
    auto expr = std::make_unique<Expr>();
    expr->kind = kind;
    expr->offset = offset;
    return expr;
  }

  ExprPtr makeBinary(ExprKind kind, std::string op, ExprPtr left, ExprPtr right) {
    auto expr = makeExpr(kind, left->offset);
    expr->name = std::move(op);
    expr->children.push_back(std::move(left));
    expr->children.push_back(std::move(right));
    return expr;
  }

  // `a, b` on the right of a set builds a list, which unpacks like a tuple.
  ExprPtr parseTupleOrExpression() {
    ExprPtr first = parseExpression();
    if (!isOperator(",")) return first;
    auto list = makeExpr(ExprKind::kList, first->offset);
    list->children.push_back(std::move(first));
    while (isOperator(",")) {
      next();
      list->children.push_back(parseExpression());
    }
    return list;
  }

  ExprPtr parseExpression() {
    DepthGuard guard(*this, peek().offset);
    ExprPtr value = parseOr();
    while (isName("if")) {
      next();
      auto conditional = makeExpr(ExprKind::kConditional, value->offset);
      conditional->children.push_back(parseOr());
      conditional->children.push_back(std::move(value));
      if (isName("else")) {
        next();
        conditional->children.push_back(parseExpression());
      } else {
        conditional->children.push_back(nullptr);
      }
      value = std::move(conditional);
    }
    return value;
  }

  ExprPtr parseOr() {
    ExprPtr left = parseAnd();
    while (isName("or")) {
      next();
      left = makeBinary(ExprKind::kOr, "or", std::move(left), parseAnd());
    }
    return left;
  }

  ExprPtr parseAnd() {
    ExprPtr left = parseNot();
    while (isName("and")) {
      next();
      left = makeBinary(ExprKind::kAnd, "and", std::move(left), parseNot());
    }
    return left;
  }

  ExprPtr parseNot() {
    if (isName("not")) {
      std::size_t offset = next().offset;
      DepthGuard guard(*this, offset);
      auto expr = makeExpr(ExprKind::kUnary, offset);
      expr->name = "not";
      expr->children.push_back(parseNot());
      return expr;
    }
    return parseCompare();
  }

  ExprPtr parseCompare() {
    ExprPtr first = parseMath1();
    ExprPtr compare;
    while (true) {
      std::string op;
      if (peek().kind == TokenKind::kOperator &&
          (peek().value == "==" || peek().value == "!=" || peek().value == "<" ||
           peek().value == ">" || peek().value == "<=" || peek().value == ">=")) {
        op = next().value;
      } else if (isName("in")) {
        next();
        op = "in";
      } else if (isName("not") && isName("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      if (!compare) {
        compare = makeExpr(ExprKind::kCompare, first->offset);
        compare->children.push_back(std::move(first));
      }
      compare->operators.push_back(op);
      compare->children.push_back(parseMath1());
    }
    return compare ? std::move(compare) : std::move(first);
  }

  ExprPtr parseMath1() {
    ExprPtr left = parseConcat();
    while (isOperator("+") || isOperator("-")) {
      std::string op = next().value;
      left = makeBinary(ExprKind::kBinary, op, std::move(left), parseConcat());
    }
    return left;
  }

  ExprPtr parseConcat() {
    ExprPtr left = parseMath2();
    while (isOperator("~")) {
      next();
      left = makeBinary(ExprKind::kBinary, "~", std::move(left), parseMath2());
    }
    return left;
  }

  ExprPtr parseMath2() {
    ExprPtr left = parsePow();
    while (isOperator("*") || isOperator("/") || isOperator("//") || isOperator("%")) {
      std::string op = next().value;
      left = makeBinary(ExprKind::kBinary, op, std::move(left), parsePow());
    }
    return left;
  }

  ExprPtr parsePow() {
    ExprPtr left = parseUnary();
    while (isOperator("**")) {
      next();
      left = makeBinary(ExprKind::kBinary, "**", std::move(left), parseUnary());
    }
    return left;
  }

  // As in Jinja, a sign binds tighter than filters and tests but looser than postfix
  // access: `-3|abs` is `(-3)|abs` and `-x.y` is `-(x.y)`.
  ExprPtr parseUnary(bool with_filters = true) {
    ExprPtr expr;
    if (isOperator("-") || isOperator("+")) {
      const Token& op = next();
      DepthGuard guard(*this, op.offset);
      expr = makeExpr(ExprKind::kUnary, op.offset);
      expr->name = op.value;
      expr->children.push_back(parseUnary(false));
    } else {
      expr = parsePostfix(parsePrimary(), false);
    }
    if (with_filters) expr = parsePostfix(std::move(expr), true);
    return expr;
  }

  ExprPtr parsePrimary() {
    DepthGuard guard(*this, peek().offset);
    const Token& token = peek();
    switch (token.kind) {
      case TokenKind::kName: {
        next();
        auto expr = makeExpr(ExprKind::kLiteral, token.offset);
        const std::string& name = token.value;
        if (name == "true" || name == "True") {
          expr->literal = true;
        } else if (name == "false" || name == "False") {
          expr->literal = false;
        } else if (name == "none" || name == "None") {
          expr->literal = None{};
        } else {
          expr->kind = ExprKind::kName;
          expr->name = name;
        }
        return expr;
      }
      case TokenKind::kString: {
        std::string text = next().value;
        // Adjacent string literals are joined, as in Python.
        while (peek().kind == TokenKind::kString) text += next().value;
        auto expr = makeExpr(ExprKind::kLiteral, token.offset);
        expr->literal = std::move(text);
        return expr;
      }
      case TokenKind::kInteger: {
        next();
        auto expr = makeExpr(ExprKind::kLiteral, token.offset);
        try {
          expr->literal = static_cast<int64_t>(std::stoll(token.value));
        } catch (const std::out_of_range&) {
          throw SyntaxError{"integer literal " + token.value + " is out of range", token.offset};
        }
        return expr;
      }
      case TokenKind::kFloat: {
        next();
        auto expr = makeExpr(ExprKind::kLiteral, token.offset);
        expr->literal = std::strtod(token.value.c_str(), nullptr);
        return expr;
      }
      case TokenKind::kOperator:
        if (token.value == "(") return parseParenthesized();
        if (token.value == "[") return parseList();
        if (token.value == "{") return parseDict();
        break;
      default:
        break;
    }
    fail("an expression");
  }

  ExprPtr parseParenthesized() {
    std::size_t offset = next().offset;
    if (isOperator(")")) {
      next();
      return makeExpr(ExprKind::kList, offset);  // the empty tuple
    }
    ExprPtr first = parseExpression();
    if (!isOperator(",")) {
      expectOperator(")");
      return first;
    }
    // A tuple: kept as a list, which behaves the same for iteration, indexing and `in`.
    auto tuple = makeExpr(ExprKind::kList, offset);
    tuple->children.push_back(std::move(first));
    while (isOperator(",")) {
      next();
      if (isOperator(")")) break;
      tuple->children.push_back(parseExpression());
    }
    expectOperator(")");
    return tuple;
  }

  ExprPtr parseList() {
    auto list = makeExpr(ExprKind::kList, next().offset);
    while (!isOperator("]")) {
      list->children.push_back(parseExpression());
      if (!isOperator(",")) break;
      next();
    }
    expectOperator("]");
    return list;
  }

  ExprPtr parseDict() {
    auto dict = makeExpr(ExprKind::kDict, next().offset);
    while (!isOperator("}")) {
      dict->children.push_back(parseExpression());
      expectOperator(":");
      dict->children.push_back(parseExpression());
      if (!isOperator(",")) break;
      next();
    }
    expectOperator("}");
    return dict;
  }

  Arguments parseCallArguments() {
    expectOperator("(");
    Arguments args;
    while (!isOperator(")")) {
      if (peek().kind == TokenKind::kName && isOperator("=", 1)) {
        std::string name = next().value;
        next();
        args.keyword.emplace_back(std::move(name), parseExpression());
      } else {
        if (!args.keyword.empty()) {
          throw SyntaxError{"positional argument after a keyword argument", peek().offset};
        }
        args.positional.push_back(parseExpression());
      }
      if (!isOperator(",")) break;
      next();
    }
    expectOperator(")");
    return args;
  }

  // Parses attribute and item access and calls after expr, and with_filters also filters
  // and tests.
  ExprPtr parsePostfix(ExprPtr expr, bool with_filters) {
    while (true) {
      if (isOperator(".")) {
        next();
        auto access = makeExpr(ExprKind::kAttribute, expr->offset);
        if (peek().kind == TokenKind::kInteger) {
          // `items.0` is item access in Jinja.
          access->kind = ExprKind::kItem;
          auto index = makeExpr(ExprKind::kLiteral, peek().offset);
          index->literal = static_cast<int64_t>(std::stoll(next().value));
          access->children.push_back(std::move(expr));
          access->children.push_back(std::move(index));
        } else {
          access->name = expectName();
          access->children.push_back(std::move(expr));
        }
        expr = std::move(access);
      } else if (isOperator("[")) {
        expr = parseSubscript(std::move(expr));
      } else if (isOperator("(")) {
        auto call = makeExpr(ExprKind::kCall, expr->offset);
        call->args = parseCallArguments();
        call->children.push_back(std::move(expr));
        expr = std::move(call);
      } else if (with_filters && isOperator("|")) {
        next();
        expr = parseFilter(std::move(expr));
      } else if (with_filters && isName("is")) {
        next();
        expr = parseTest(std::move(expr));
      } else {
        return expr;
      }
    }
  }

  ExprPtr parseSubscript(ExprPtr object) {
    std::size_t offset = next().offset;
    ExprPtr bounds[3];
    int colons = 0;
    while (true) {
      if (isOperator("]")) break;
      if (isOperator(":")) {
        if (++colons > 2) fail("']'");
        next();
        continue;
      }
      if (bounds[colons]) fail("':' or ']'");
      bounds[colons] = parseExpression();
    }
    expectOperator("]");
    if (colons == 0) {
      if (!bounds[0]) throw SyntaxError{"empty subscript", offset};
      auto item = makeExpr(ExprKind::kItem, object->offset);
      item->children.push_back(std::move(object));
      item->children.push_back(std::move(bounds[0]));
      return item;
    }
    auto slice = makeExpr(ExprKind::kSlice, object->offset);
    slice->children.push_back(std::move(object));
    for (auto& bound : bounds) slice->children.push_back(std::move(bound));
    return slice;
  }

  ExprPtr parseFilter(ExprPtr operand) {
    std::size_t offset = peek().offset;
    std::string name = expectName();
    if (!isKnownFilter(name)) throw SyntaxError{"unknown filter '" + name + "'", offset};
    auto filter = makeExpr(ExprKind::kFilter, offset);
    filter->name = std::move(name);
    if (isOperator("(")) filter->args = parseCallArguments();
    filter->children.push_back(std::move(operand));
    return filter;
  }

  ExprPtr parseTest(ExprPtr operand) {
    auto test = makeExpr(ExprKind::kTest, peek().offset);
    if (isName("not")) {
      next();
      test->negated = true;
    }
    std::size_t name_offset = peek().offset;
    // `none`, `true` and `false` are names of tests as well as literals.
    if (peek().kind != TokenKind::kName) fail("a test name");
    test->name = next().value;
    if (!isKnownTest(test->name))
      throw SyntaxError{"unknown test '" + test->name + "'", name_offset};
    if (isOperator("(")) {
      test->args = parseCallArguments();
    } else if (peek().kind == TokenKind::kString || peek().kind == TokenKind::kInteger ||
               peek().kind == TokenKind::kFloat ||
               (peek().kind == TokenKind::kName && !isName("else") && !isName("and") &&
                !isName("or") && !isName("if") && !isName("is") && !isName("not") &&
                !isName("in")) ||
               isOperator("[") || isOperator("{")) {
      // `x is divisibleby 3`: one argument without parentheses.
      test->args.positional.push_back(parsePostfix(parsePrimary(), false));
    }
    test->children.push_back(std::move(operand));
    return test;
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

NodeList parseTemplate(std::string_view source) { return Parser(tokenize(source)).parseAll(); }

}  // namespace hfchain::chat_template
