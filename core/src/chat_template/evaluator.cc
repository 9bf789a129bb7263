// Evaluation of statements and expressions. Scoping follows Jinja: a for loop body and a
// macro body get their own scope, so `set` inside them does not change outer variables
// (which is why templates use namespace() to carry state out of a loop), while `if` shares
// its enclosing scope.
#include "chat_template/evaluator.h"

#include <cmath>
#include <ctime>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat_template/builtins.h"

namespace hfchain::chat_template {
namespace {

using Scope = std::unordered_map<std::string, Value>;

enum class LoopSignal { kNone, kBreak, kContinue };

std::string limitMessage(std::string_view what, int64_t limit) {
  return std::string(what) + " limit (" + std::to_string(limit) + ") exceeded";
}

[[noreturn]] void unsupportedOperands(std::string_view op, const Value& a, const Value& b) {
  throw RenderError("unsupported operand types for " + std::string(op) + ": " +
                    std::string(a.typeName()) + " and " + std::string(b.typeName()));
}

// Python's bool is an int subclass, so True + 1 == 2; arithmetic sees bools as ints.
Value numericOf(const Value& value) {
  if (value.isBool()) return Value(int64_t{value.asBool() ? 1 : 0});
  return value;
}

class Evaluator {
  // Counts one level of evaluation against RenderLimits::max_nesting.
  class NestingGuard {
   public:
    explicit NestingGuard(Evaluator& evaluator) : evaluator_(evaluator) {
      if (++evaluator_.nesting_ > evaluator_.limits_.max_nesting) {
        --evaluator_.nesting_;
        throw RenderError(limitMessage("nesting depth", evaluator_.limits_.max_nesting));
      }
    }
    ~NestingGuard() { --evaluator_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Evaluator& evaluator_;
  };

 public:
  Evaluator(const ValueDict& globals, const RenderLimits& limits, std::size_t& offset)
      : limits_(limits), offset_(offset) {
    scopes_.emplace_back();
    for (const auto& [name, value] : globals.entries) scopes_.back()[name] = value;
  }

  std::string run(const NodeList& nodes) {
    std::string out;
    renderNodes(nodes, out);
    return out;
  }

 private:
  // --- Statements ---------------------------------------------------------------------------

  LoopSignal renderNodes(const NodeList& nodes, std::string& out) {
    for (const NodePtr& node : nodes) {
      LoopSignal signal = renderNode(*node, out);
      if (signal != LoopSignal::kNone) return signal;
    }
    return LoopSignal::kNone;
  }

  void append(std::string& out, std::string_view text) {
    if (out.size() + text.size() > limits_.max_output_bytes) {
      throw RenderError(
          limitMessage("output size", static_cast<int64_t>(limits_.max_output_bytes)));
    }
    out.append(text);
  }

  LoopSignal renderNode(const Node& node, std::string& out) {
    NestingGuard guard(*this);
    offset_ = node.offset;
    switch (node.kind) {
      case NodeKind::kText:
        append(out, node.text);
        return LoopSignal::kNone;
      case NodeKind::kOutput:
        append(out, toText(eval(*node.expr)));
        return LoopSignal::kNone;
      case NodeKind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (isTruthy(eval(*condition))) return renderNodes(body, out);
        }
        return renderNodes(node.else_body, out);
      case NodeKind::kFor:
        renderFor(node, out);
        return LoopSignal::kNone;
      case NodeKind::kSet:
        renderSet(node);
        return LoopSignal::kNone;
      case NodeKind::kSetBlock: {
        std::string captured;
        renderNodes(node.body, captured);
        assign(node.targets[0], Value(std::move(captured)));
        return LoopSignal::kNone;
      }
      case NodeKind::kMacro:
        assign(node.macro->name, Value(node.macro));
        return LoopSignal::kNone;
      case NodeKind::kBreak:
        return LoopSignal::kBreak;
      case NodeKind::kContinue:
        return LoopSignal::kContinue;
      case NodeKind::kFilterBlock: {
        std::string captured;
        renderNodes(node.body, captured);
        append(out, toText(applyFilterChain(*node.expr, Value(std::move(captured)))));
        return LoopSignal::kNone;
      }
      case NodeKind::kGeneration:
        return renderNodes(node.body, out);
    }
    return LoopSignal::kNone;
  }

  void assign(const std::string& name, Value value) { scopes_.back()[name] = std::move(value); }

  void assignTargets(const std::vector<std::string>& targets, const Value& value) {
    if (targets.size() == 1) {
      assign(targets[0], value);
      return;
    }
    ValueList items = iterate(value);
    if (items.size() != targets.size()) {
      throw RenderError("cannot unpack " + std::to_string(items.size()) + " values into " +
                        std::to_string(targets.size()) + " names");
    }
    for (std::size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
  }

  void renderSet(const Node& node) {
    Value value = eval(*node.expr);
    if (node.attribute.empty()) {
      assignTargets(node.targets, value);
      return;
    }
    Value object = lookup(node.targets[0]);
    if (!object.isNamespace()) {
      throw RenderError("cannot set attribute '" + node.attribute + "' on '" + node.targets[0] +
                        "', which is not a namespace");
    }
    object.asNamespace().attributes.set(node.attribute, std::move(value));
  }

  void countIteration() {
    if (++iterations_ > limits_.max_loop_iterations) {
      throw RenderError(limitMessage("loop iteration", limits_.max_loop_iterations));
    }
  }

  void renderFor(const Node& node, std::string& out) {
    ValueList items = iterate(eval(*node.expr));
    if (node.condition) {
      // `for x in xs if cond`: filtered before the loop, so loop.length counts kept items.
      ValueList kept;
      for (const Value& item : items) {
        countIteration();
        scopes_.emplace_back();
        assignTargets(node.targets, item);
        bool keep = isTruthy(eval(*node.condition));
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      renderNodes(node.else_body, out);
      return;
    }
    auto length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      countIteration();
      scopes_.emplace_back();
      ValueDict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(length - i));
      loop.set("revindex0", Value(length - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == length - 1));
      loop.set("length", Value(length));
      loop.set("depth", Value(int64_t{1}));
      loop.set("previtem", i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value());
      loop.set("nextitem", i + 1 < length ? items[static_cast<std::size_t>(i + 1)] : Value());
      assign("loop", Value(std::move(loop)));
      assignTargets(node.targets, items[static_cast<std::size_t>(i)]);
      LoopSignal signal = renderNodes(node.body, out);
      scopes_.pop_back();
      if (signal == LoopSignal::kBreak) break;
    }
  }

  // --- Expressions --------------------------------------------------------------------------

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value();
  }

  CallArgs evalArgs(const Arguments& args) {
    CallArgs out;
    for (const ExprPtr& arg : args.positional) out.positional.push_back(eval(*arg));
    for (const auto& [name, arg] : args.keyword) out.keyword.emplace_back(name, eval(*arg));
    return out;
  }

  Value applyFilterChain(const Expr& expr, Value input) {
    const Expr& operand = *expr.children[0];
    Value value = operand.kind == ExprKind::kFilter ? applyFilterChain(operand, std::move(input))
                                                    : std::move(input);
    offset_ = expr.offset;
    return applyFilter(expr.name, value, evalArgs(expr.args));
  }

  Value eval(const Expr& expr) {
    NestingGuard guard(*this);
    offset_ = expr.offset;
    switch (expr.kind) {
      case ExprKind::kLiteral:
        return expr.literal;
      case ExprKind::kName:
        return lookup(expr.name);
      case ExprKind::kList: {
        ValueList items;
        for (const ExprPtr& child : expr.children) items.push_back(eval(*child));
        return Value(std::move(items));
      }
      case ExprKind::kDict: {
        ValueDict dict;
        for (std::size_t i = 0; i + 1 < expr.children.size(); i += 2) {
          Value key = eval(*expr.children[i]);
          if (!key.isString()) {
            throw RenderError("dict keys must be strings, got " + std::string(key.typeName()));
          }
          dict.set(key.asString(), eval(*expr.children[i + 1]));
        }
        return Value(std::move(dict));
      }
      case ExprKind::kAttribute:
        return getAttribute(eval(*expr.children[0]), expr.name);
      case ExprKind::kItem: {
        Value object = eval(*expr.children[0]);
        return getItem(object, eval(*expr.children[1]));
      }
      case ExprKind::kSlice: {
        Value object = eval(*expr.children[0]);
        Value bounds[3];
        for (int i = 0; i < 3; ++i) {
          if (expr.children[i + 1]) bounds[i] = eval(*expr.children[i + 1]);
        }
        return getSlice(object, bounds[0], bounds[1], bounds[2]);
      }
      case ExprKind::kCall:
        return evalCall(expr);
      case ExprKind::kFilter: {
        Value operand = eval(*expr.children[0]);
        CallArgs args = evalArgs(expr.args);
        offset_ = expr.offset;
        return applyFilter(expr.name, operand, args);
      }
      case ExprKind::kTest: {
        Value operand = eval(*expr.children[0]);
        CallArgs args = evalArgs(expr.args);
        offset_ = expr.offset;
        return Value(applyTest(expr.name, operand, args) != expr.negated);
      }
      case ExprKind::kUnary:
        return evalUnary(expr);
      case ExprKind::kBinary: {
        Value left = eval(*expr.children[0]);
        Value right = eval(*expr.children[1]);
        offset_ = expr.offset;
        return binary(expr.name, left, right);
      }
      case ExprKind::kAnd: {
        Value left = eval(*expr.children[0]);
        return isTruthy(left) ? eval(*expr.children[1]) : left;
      }
      case ExprKind::kOr: {
        Value left = eval(*expr.children[0]);
        return isTruthy(left) ? left : eval(*expr.children[1]);
      }
      case ExprKind::kCompare:
        return evalCompare(expr);
      case ExprKind::kConditional:
        if (isTruthy(eval(*expr.children[0]))) return eval(*expr.children[1]);
        return expr.children[2] ? eval(*expr.children[2]) : Value();
    }
    return Value();
  }

  Value evalUnary(const Expr& expr) {
    Value operand = eval(*expr.children[0]);
    if (expr.name == "not") return Value(!isTruthy(operand));
    Value number = numericOf(operand);
    if (!number.isNumber()) {
      throw RenderError("bad operand type for unary " + expr.name + ": " +
                        std::string(operand.typeName()));
    }
    if (expr.name == "+") return number;
    if (number.isInt()) {
      if (number.asInt() == INT64_MIN) throw RenderError("integer overflow");
      return Value(-number.asInt());
    }
    return Value(-number.asFloat());
  }

  Value evalCompare(const Expr& expr) {
    Value left = eval(*expr.children[0]);
    for (std::size_t i = 0; i < expr.operators.size(); ++i) {
      Value right = eval(*expr.children[i + 1]);
      offset_ = expr.offset;
      if (!compare(expr.operators[i], left, right)) return Value(false);
      left = std::move(right);
    }
    return Value(true);
  }

  static bool contains(const Value& container, const Value& item) {
    if (container.isString()) {
      if (!item.isString()) {
        throw RenderError("'in <string>' requires a string as left operand, not " +
                          std::string(item.typeName()));
      }
      return container.asString().find(item.asString()) != std::string::npos;
    }
    if (container.isList()) {
      for (const Value& element : container.asList()) {
        if (valuesEqual(element, item)) return true;
      }
      return false;
    }
    if (container.isDict() || container.isNamespace()) {
      return item.isString() && !getAttribute(container, item.asString()).isUndefined();
    }
    if (container.isUndefined()) return false;
    throw RenderError("argument of type " + std::string(container.typeName()) + " is not iterable");
  }

  static bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return valuesEqual(a, b);
    if (op == "!=") return !valuesEqual(a, b);
    if (op == "in") return contains(b, a);
    if (op == "not in") return !contains(b, a);
    int order = 0;
    Value x = numericOf(a);
    Value y = numericOf(b);
    if (x.isNumber() && y.isNumber()) {
      if (x.isInt() && y.isInt()) {
        order = x.asInt() < y.asInt() ? -1 : x.asInt() > y.asInt() ? 1 : 0;
      } else {
        double p = x.asNumber();
        double q = y.asNumber();
        if (std::isnan(p) || std::isnan(q)) return false;
        order = p < q ? -1 : p > q ? 1 : 0;
      }
    } else if (a.isString() && b.isString()) {
      // UTF-8 byte order is code point order, which is how Python compares strings.
      int c = a.asString().compare(b.asString());
      order = c < 0 ? -1 : c > 0 ? 1 : 0;
    } else {
      unsupportedOperands(op, a, b);
    }
    if (op == "<") return order < 0;
    if (op == ">") return order > 0;
    if (op == "<=") return order <= 0;
    return order >= 0;
  }

  std::string checkedString(std::string text) const {
    if (text.size() > limits_.max_output_bytes) {
      throw RenderError(
          limitMessage("string size", static_cast<int64_t>(limits_.max_output_bytes)));
    }
    return text;
  }

  Value repeat(const Value& sequence, int64_t count) {
    count = std::max<int64_t>(count, 0);
    if (sequence.isString()) {
      const std::string& text = sequence.asString();
      if (!text.empty() && static_cast<uint64_t>(count) > limits_.max_output_bytes / text.size()) {
        throw RenderError(
            limitMessage("string size", static_cast<int64_t>(limits_.max_output_bytes)));
      }
      std::string out;
      for (int64_t i = 0; i < count; ++i) out += text;
      return Value(std::move(out));
    }
    const ValueList& items = sequence.asList();
    if (!items.empty() &&
        count > limits_.max_loop_iterations / static_cast<int64_t>(items.size())) {
      throw RenderError(limitMessage("loop iteration", limits_.max_loop_iterations));
    }
    ValueList out;
    for (int64_t i = 0; i < count; ++i) out.insert(out.end(), items.begin(), items.end());
    return Value(std::move(out));
  }

  Value binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") return Value(checkedString(toText(a) + toText(b)));
    if (op == "+") {
      if (a.isString() && b.isString()) return Value(checkedString(a.asString() + b.asString()));
      if (a.isList() && b.isList()) {
        ValueList items = a.asList();
        items.insert(items.end(), b.asList().begin(), b.asList().end());
        return Value(std::move(items));
      }
    }
    if (op == "*") {
      if ((a.isString() || a.isList()) && numericOf(b).isInt())
        return repeat(a, numericOf(b).asInt());
      if ((b.isString() || b.isList()) && numericOf(a).isInt())
        return repeat(b, numericOf(a).asInt());
    }
    Value x = numericOf(a);
    Value y = numericOf(b);
    if (!x.isNumber() || !y.isNumber()) unsupportedOperands(op, a, b);
    if (x.isInt() && y.isInt()) return integerOp(op, x.asInt(), y.asInt());
    double p = x.asNumber();
    double q = y.asNumber();
    if (op == "+") return Value(p + q);
    if (op == "-") return Value(p - q);
    if (op == "*") return Value(p * q);
    if (op == "**") return Value(std::pow(p, q));
    if (q == 0.0) throw RenderError("division by zero");
    if (op == "/") return Value(p / q);
    if (op == "//") return Value(std::floor(p / q));
    // Python's % takes the sign of the divisor.
    double r = std::fmod(p, q);
    if (r != 0.0 && ((r < 0) != (q < 0))) r += q;
    return Value(r);
  }

  static Value integerOp(const std::string& op, int64_t p, int64_t q) {
    int64_t result = 0;
    if (op == "+" || op == "-" || op == "*") {
      bool overflow = op == "+"   ? __builtin_add_overflow(p, q, &result)
                      : op == "-" ? __builtin_sub_overflow(p, q, &result)
                                  : __builtin_mul_overflow(p, q, &result);
      if (overflow) throw RenderError("integer overflow in " + op);
      return Value(result);
    }
    if (op == "**") {
      if (q < 0) return Value(std::pow(static_cast<double>(p), static_cast<double>(q)));
      result = 1;
      for (int64_t i = 0; i < q; ++i) {
        if (__builtin_mul_overflow(result, p, &result)) throw RenderError("integer overflow in **");
        if (result == 0 || result == 1) break;
      }
      return Value(result);
    }
    if (q == 0) throw RenderError("division by zero");
    if (op == "/") return Value(static_cast<double>(p) / static_cast<double>(q));
    if (p == INT64_MIN && q == -1) throw RenderError("integer overflow in " + op);
    // Python's // rounds toward negative infinity and % takes the sign of the divisor.
    int64_t quotient = p / q;
    int64_t remainder = p % q;
    if (remainder != 0 && ((remainder < 0) != (q < 0))) {
      --quotient;
      remainder += q;
    }
    return Value(op == "//" ? quotient : remainder);
  }

  // --- Calls --------------------------------------------------------------------------------

  Value evalCall(const Expr& expr) {
    const Expr& callee = *expr.children[0];
    if (callee.kind == ExprKind::kAttribute) {
      Value object = eval(*callee.children[0]);
      CallArgs args = evalArgs(expr.args);
      offset_ = expr.offset;
      if (hasMethod(object, callee.name)) return callMethod(object, callee.name, args);
      return callValue(getAttribute(object, callee.name), callee.name, args);
    }
    if (callee.kind == ExprKind::kName) {
      Value target = lookup(callee.name);
      CallArgs args = evalArgs(expr.args);
      offset_ = expr.offset;
      if (target.isUndefined()) return callGlobal(callee.name, args);
      return callValue(target, callee.name, args);
    }
    Value target = eval(callee);
    CallArgs args = evalArgs(expr.args);
    offset_ = expr.offset;
    return callValue(target, "expression", args);
  }

  Value callValue(const Value& target, const std::string& name, const CallArgs& args) {
    if (!target.isMacro()) {
      throw RenderError("'" + name + "' is not callable (it is " + std::string(target.typeName()) +
                        ")");
    }
    const MacroNode& macro = *target.asMacro();
    if (call_depth_ >= limits_.max_call_depth) {
      throw RenderError(limitMessage("macro call depth", limits_.max_call_depth));
    }
    if (args.positional.size() > macro.parameters.size()) {
      throw RenderError("macro '" + macro.name + "' takes " +
                        std::to_string(macro.parameters.size()) + " arguments, " +
                        std::to_string(args.positional.size()) + " given");
    }
    Scope frame;
    for (std::size_t i = 0; i < macro.parameters.size(); ++i) {
      const auto& [parameter, default_value] = macro.parameters[i];
      const Value& given = args.get(i, parameter);
      if (!given.isUndefined()) {
        frame[parameter] = given;
      } else if (default_value) {
        frame[parameter] = eval(*default_value);
      }
    }
    // A macro sees the template's top-level variables and its arguments, not the caller's
    // loop variables.
    std::vector<Scope> caller_scopes(std::make_move_iterator(scopes_.begin() + 1),
                                     std::make_move_iterator(scopes_.end()));
    scopes_.resize(1);
    scopes_.push_back(std::move(frame));
    ++call_depth_;
    std::string out;
    try {
      renderNodes(macro.body, out);
    } catch (...) {
      --call_depth_;
      scopes_.resize(1);
      for (Scope& scope : caller_scopes) scopes_.push_back(std::move(scope));
      throw;
    }
    --call_depth_;
    scopes_.resize(1);
    for (Scope& scope : caller_scopes) scopes_.push_back(std::move(scope));
    return Value(std::move(out));
  }

  Value callGlobal(const std::string& name, const CallArgs& args) {
    if (name == "raise_exception") throw RenderError(toText(args.get(0, "message")), true);
    if (name == "range") return range(args);
    if (name == "namespace" || name == "dict") {
      ValueDict attributes;
      for (const Value& positional : args.positional) {
        if (!positional.isDict())
          throw RenderError(name + "() accepts only a dict as positional argument");
        for (const auto& [key, value] : positional.asDict().entries) attributes.set(key, value);
      }
      for (const auto& [key, value] : args.keyword) attributes.set(key, value);
      if (name == "dict") return Value(std::move(attributes));
      auto ns = std::make_shared<Namespace>();
      ns->attributes = std::move(attributes);
      return Value(std::move(ns));
    }
    if (name == "strftime_now") {
      // transformers renders datetime.now().strftime(format) in the local time zone.
      const Value& format = args.get(0, "format");
      if (!format.isString()) throw RenderError("strftime_now expects a format string");
      std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[512];
      std::size_t length = std::strftime(buffer, sizeof(buffer), format.asString().c_str(), &local);
      return Value(std::string(buffer, length));
    }
    throw RenderError("'" + name + "' is undefined and cannot be called");
  }

  Value range(const CallArgs& args) {
    auto integer = [](const Value& v) {
      Value n = numericOf(v);
      if (!n.isInt())
        throw RenderError("range() expects integers, got " + std::string(v.typeName()));
      return n.asInt();
    };
    if (args.positional.empty() || args.positional.size() > 3) {
      throw RenderError("range() expects 1 to 3 arguments");
    }
    int64_t start = 0;
    int64_t stop = 0;
    int64_t step = 1;
    if (args.positional.size() == 1) {
      stop = integer(args.positional[0]);
    } else {
      start = integer(args.positional[0]);
      stop = integer(args.positional[1]);
      if (args.positional.size() == 3) step = integer(args.positional[2]);
    }
    if (step == 0) throw RenderError("range() step must not be zero");
    ValueList items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      countIteration();
      items.emplace_back(i);
      if (__builtin_add_overflow(i, step, &i)) break;
      i -= step;
    }
    return Value(std::move(items));
  }

  const RenderLimits& limits_;
  std::size_t& offset_;
  std::vector<Scope> scopes_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  int nesting_ = 0;
};

}  // namespace

std::string evaluate(const NodeList& nodes, const ValueDict& globals, const RenderLimits& limits,
                     std::size_t& offset) {
  return Evaluator(globals, limits, offset).run(nodes);
}

}  // namespace hfchain::chat_template
