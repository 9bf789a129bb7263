// The filters, tests and methods the chat template interpreter provides.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat_template/value.h"

namespace hfchain::chat_template {

// Evaluated call arguments.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Returns the argument at `index` or called `name`, or undefined when it is absent.
  const Value& get(std::size_t index, std::string_view name) const;
};

// True for the filter and test names the interpreter implements; the parser rejects others,
// as Jinja does when it compiles a template.
bool isKnownFilter(std::string_view name);
bool isKnownTest(std::string_view name);

// Applies a filter or test. Throw RenderError on a wrong type or argument.
Value applyFilter(std::string_view name, const Value& operand, const CallArgs& args);
bool applyTest(std::string_view name, const Value& operand, const CallArgs& args);

// True when `object.name(...)` is a method call handled by callMethod (string and dict
// methods), rather than a call of an attribute.
bool hasMethod(const Value& object, std::string_view name);
Value callMethod(const Value& object, std::string_view name, const CallArgs& args);

// Attribute and item access with Jinja's fallbacks: `a.b` looks up the key "b" of a dict or
// namespace, `a[i]` indexes lists and strings from either end. Missing keys and indexes, and
// any access on undefined or none, give undefined.
Value getAttribute(const Value& object, std::string_view name);
Value getItem(const Value& object, const Value& key);
Value getSlice(const Value& object, const Value& start, const Value& stop, const Value& step);

// Python's str.upper and str.lower, with Unicode's full case mapping (ICU root locale).
std::string toUpper(std::string_view text);
std::string toLower(std::string_view text);

// Returns the elements a for loop visits: list items, dict keys or string characters.
// Undefined iterates as empty, as Jinja's default Undefined does.
ValueList iterate(const Value& value);

}  // namespace hfchain::chat_template
