// The syntax tree of a chat template and the parser that builds it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat_template/value.h"

namespace hfchain::chat_template {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

enum class ExprKind {
  kLiteral,      // literal
  kName,         // name
  kList,         // children: items
  kDict,         // children: key, value, key, value, ...
  kAttribute,    // children[0].name
  kItem,         // children[0][children[1]]
  kSlice,        // children[0][children[1]:children[2]:children[3]], each bound may be null
  kCall,         // children[0](args)
  kFilter,       // children[0] | name(args)
  kTest,         // children[0] is [not] name(args)
  kUnary,        // name is "-", "+" or "not"; children[0]
  kBinary,       // name is the operator; children[0], children[1]
  kAnd,          // children[0] and children[1]
  kOr,           // children[0] or children[1]
  kCompare,      // children[0] operators[0] children[1] operators[1] children[2] ...
  kConditional,  // children[1] if children[0] else children[2] (null when no else)
};

struct Expr {
  ExprKind kind;
  std::size_t offset;  // byte offset of the expression in the source
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::string> operators;
  Arguments args;
  bool negated = false;  // `is not`
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;

struct MacroNode {
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> parameters;  // default value or null
  NodeList body;
};

enum class NodeKind {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches, else_body
  kFor,       // targets in expr [if condition]: body, else_body
  kSet,       // targets (or attribute target) = expr
  kSetBlock,  // {% set targets[0] %}body{% endset %}
  kMacro,     // macro
  kBreak,
  kContinue,
  kFilterBlock,  // {% filter name(args) %}body{% endfilter %}; expr is the filter applied to
                 // a null operand placeholder
  kGeneration,   // {% generation %}body{% endgeneration %}, rendered as its body
};

struct Node {
  NodeKind kind;
  std::size_t offset;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  std::string attribute;  // set ns.attribute = ...
  std::vector<std::pair<ExprPtr, NodeList>> branches;
  NodeList body;
  NodeList else_body;
  std::shared_ptr<const MacroNode> macro;
};

// Parses template source into a node list. Throws SyntaxError (lexer.h) with the offset of
// the offending token. Nesting of expressions and statements is limited to
// kMaxParseDepth so that a hostile template cannot exhaust the stack.
NodeList parseTemplate(std::string_view source);

inline constexpr int kMaxParseDepth = 200;

}  // namespace hfchain::chat_template
