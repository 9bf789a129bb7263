// The value type of the chat template interpreter and the conversions Jinja applies to it:
// truthiness, equality, rendering as text and tojson.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hfchain::chat_template {

struct MacroNode;
class Value;

using ValueList = std::vector<Value>;

// A dict with string keys in insertion order, as Python dicts and JSON objects keep it.
struct ValueDict {
  std::vector<std::pair<std::string, Value>> entries;

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value value);
};

// The object returned by namespace(...): a dict whose attributes `set ns.x = ...` may assign.
struct Namespace {
  ValueDict attributes;
};

struct Undefined {};
struct None {};

// A Jinja value. Lists, dicts and namespaces are shared by reference, as in Python, so a
// namespace assigned inside a loop is seen outside it. Strings are UTF-8.
class Value {
 public:
  using ListPtr = std::shared_ptr<ValueList>;
  using DictPtr = std::shared_ptr<ValueDict>;
  using NamespacePtr = std::shared_ptr<Namespace>;
  using MacroPtr = std::shared_ptr<const MacroNode>;
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr,
                               DictPtr, NamespacePtr, MacroPtr>;

  Value() = default;
  Value(None) : storage_(None{}) {}                                                  // NOLINT
  Value(bool value) : storage_(value) {}                                             // NOLINT
  Value(int64_t value) : storage_(value) {}                                          // NOLINT
  Value(int value) : storage_(static_cast<int64_t>(value)) {}                        // NOLINT
  Value(double value) : storage_(value) {}                                           // NOLINT
  Value(std::string value) : storage_(std::move(value)) {}                           // NOLINT
  Value(std::string_view value) : storage_(std::string(value)) {}                    // NOLINT
  Value(const char* value) : storage_(std::string(value)) {}                         // NOLINT
  Value(ValueList list) : storage_(std::make_shared<ValueList>(std::move(list))) {}  // NOLINT
  Value(ValueDict dict) : storage_(std::make_shared<ValueDict>(std::move(dict))) {}  // NOLINT
  Value(NamespacePtr ns) : storage_(std::move(ns)) {}                                // NOLINT
  Value(MacroPtr macro) : storage_(std::move(macro)) {}                              // NOLINT

  bool isUndefined() const { return std::holds_alternative<Undefined>(storage_); }
  bool isNone() const { return std::holds_alternative<None>(storage_); }
  bool isBool() const { return std::holds_alternative<bool>(storage_); }
  bool isInt() const { return std::holds_alternative<int64_t>(storage_); }
  bool isFloat() const { return std::holds_alternative<double>(storage_); }
  bool isNumber() const { return isInt() || isFloat(); }
  bool isString() const { return std::holds_alternative<std::string>(storage_); }
  bool isList() const { return std::holds_alternative<ListPtr>(storage_); }
  bool isDict() const { return std::holds_alternative<DictPtr>(storage_); }
  bool isNamespace() const { return std::holds_alternative<NamespacePtr>(storage_); }
  bool isMacro() const { return std::holds_alternative<MacroPtr>(storage_); }

  bool asBool() const { return std::get<bool>(storage_); }
  int64_t asInt() const { return std::get<int64_t>(storage_); }
  double asFloat() const { return std::get<double>(storage_); }
  // Returns the number as a double; valid for ints and floats.
  double asNumber() const { return isInt() ? static_cast<double>(asInt()) : asFloat(); }
  const std::string& asString() const { return std::get<std::string>(storage_); }
  const ValueList& asList() const { return *std::get<ListPtr>(storage_); }
  ValueList& asList() { return *std::get<ListPtr>(storage_); }
  const ValueDict& asDict() const { return *std::get<DictPtr>(storage_); }
  const Namespace& asNamespace() const { return *std::get<NamespacePtr>(storage_); }
  Namespace& asNamespace() { return *std::get<NamespacePtr>(storage_); }
  const MacroPtr& asMacro() const { return std::get<MacroPtr>(storage_); }

  // Returns the name of the type for error messages, in Python's words (str, int, list...).
  std::string_view typeName() const;

 private:
  Storage storage_;
};

// The error the interpreter throws while rendering. It never leaves the chat_template module:
// ChatTemplate::render converts it to an Error. Exceptions keep the tree walker readable,
// because nearly every step of it can fail.
class RenderError : public std::runtime_error {
 public:
  RenderError(std::string message, bool raised_by_template = false)
      : std::runtime_error(std::move(message)), raised_by_template_(raised_by_template) {}
  // True for raise_exception(...), whose message is the template's own text.
  bool raisedByTemplate() const { return raised_by_template_; }

 private:
  bool raised_by_template_;
};

// Python truthiness: undefined, none, false, 0, 0.0, "" and empty containers are false.
bool isTruthy(const Value& value);

// Python ==: ints and floats compare by value, containers element by element.
bool valuesEqual(const Value& left, const Value& right);

// Renders a value as {{ }} prints it. Follows @huggingface/jinja where it differs from
// Python: none and undefined print as "", booleans as true/false and containers as JSON.
std::string toText(const Value& value);

// Python's repr of a float: the shortest round-trip digits, ".0" on integral values and an
// exponent below 1e-4 or from 1e16 on.
std::string formatFloat(double value);

// Python json.dumps(value, ensure_ascii=False, indent=indent), as transformers' tojson calls
// it. indent < 0 means none, which uses the separators ", " and ": ".
std::string toJson(const Value& value, int indent);

// UTF-8 helpers: strings are indexed, sliced and measured in code points, as in Python.
std::u32string toCodePoints(std::string_view text);
std::string fromCodePoints(std::u32string_view text);
// Python's str.isspace for one code point.
bool isPythonSpace(char32_t cp);

}  // namespace hfchain::chat_template
