// Filters, tests and methods, following Jinja 3.1 (jinja2/filters.py, jinja2/tests.py) and
// the Python str and dict methods that chat templates call.
#include "chat_template/builtins.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_set>

namespace hfchain::chat_template {
namespace {

const Value kUndefined;

const std::unordered_set<std::string_view> kFilters = {
    "abs",    "capitalize", "count",   "d",       "default", "first",  "float",  "indent",
    "int",    "items",      "join",    "last",    "length",  "list",   "lower",  "map",
    "reject", "rejectattr", "replace", "reverse", "round",   "safe",   "select", "selectattr",
    "sort",   "string",     "title",   "tojson",  "trim",    "unique", "upper",  "dictsort"};

const std::unordered_set<std::string_view> kTests = {
    "boolean", "callable", "defined",  "divisibleby", "eq",      "equalto",   "even", "false",
    "float",   "integer",  "iterable", "lower",       "mapping", "ne",        "none", "number",
    "odd",     "sameas",   "sequence", "string",      "true",    "undefined", "upper"};

[[noreturn]] void typeError(std::string_view what, const Value& value) {
  throw RenderError(std::string(what) + " cannot be applied to a value of type " +
                    std::string(value.typeName()));
}

const std::string& requireString(std::string_view what, const Value& value) {
  if (!value.isString()) typeError(what, value);
  return value.asString();
}

int64_t requireInt(std::string_view what, const Value& value) {
  if (value.isInt()) return value.asInt();
  if (value.isBool()) return value.asBool() ? 1 : 0;
  throw RenderError(std::string(what) + " expects an integer, got " +
                    std::string(value.typeName()));
}

std::string textOf(const Value& value) { return toText(value); }

// --- Strings -------------------------------------------------------------------------------

std::string stripChars(std::string_view text, const Value& chars, bool left, bool right) {
  std::u32string points = toCodePoints(text);
  std::u32string set;
  bool whitespace = chars.isUndefined() || chars.isNone();
  if (!whitespace) set = toCodePoints(requireString("strip", chars));
  auto strip = [&](char32_t cp) {
    return whitespace ? isPythonSpace(cp) : set.find(cp) != std::u32string::npos;
  };
  std::size_t begin = 0;
  std::size_t end = points.size();
  if (left) {
    while (begin < end && strip(points[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strip(points[end - 1])) --end;
  }
  return fromCodePoints(std::u32string_view(points).substr(begin, end - begin));
}

ValueList splitString(std::string_view text, const Value& separator, const Value& max_split) {
  int64_t limit =
      max_split.isUndefined() || max_split.isNone() ? -1 : requireInt("split", max_split);
  ValueList parts;
  if (separator.isUndefined() || separator.isNone()) {
    // Python's split(): runs of whitespace separate, and empty parts are dropped.
    std::u32string points = toCodePoints(text);
    std::size_t i = 0;
    while (i < points.size()) {
      while (i < points.size() && isPythonSpace(points[i])) ++i;
      if (i == points.size()) break;
      if (limit >= 0 && static_cast<int64_t>(parts.size()) == limit) {
        std::size_t end = points.size();
        while (end > i && isPythonSpace(points[end - 1])) --end;
        parts.emplace_back(fromCodePoints(std::u32string_view(points).substr(i, end - i)));
        break;
      }
      std::size_t start = i;
      while (i < points.size() && !isPythonSpace(points[i])) ++i;
      parts.emplace_back(fromCodePoints(std::u32string_view(points).substr(start, i - start)));
    }
    return parts;
  }
  const std::string& sep = requireString("split", separator);
  if (sep.empty()) throw RenderError("split: empty separator");
  std::size_t start = 0;
  while (true) {
    std::size_t at = text.find(sep, start);
    if (at == std::string_view::npos ||
        (limit >= 0 && static_cast<int64_t>(parts.size()) == limit)) {
      parts.emplace_back(std::string(text.substr(start)));
      return parts;
    }
    parts.emplace_back(std::string(text.substr(start, at - start)));
    start = at + sep.size();
  }
}

std::string replaceString(std::string_view text, const std::string& old_text,
                          const std::string& new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    // Python inserts the replacement before every character and at the end.
    std::u32string points = toCodePoints(text);
    int64_t done = 0;
    for (char32_t cp : points) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      out += fromCodePoints(std::u32string(1, cp));
    }
    if (count < 0 || done < count) out += new_text;
    return out;
  }
  std::size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    std::size_t at = text.find(old_text, start);
    if (at == std::string_view::npos) break;
    out.append(text.substr(start, at - start));
    out += new_text;
    start = at + old_text.size();
    ++done;
  }
  out.append(text.substr(start));
  return out;
}

bool isCased(char32_t cp) {
  auto c = static_cast<UChar32>(cp);
  return u_isUUppercase(c) || u_isULowercase(c) || u_istitle(c);
}

std::string titleCase(std::string_view text) {
  // Python's str.title: a cased character after an uncased one starts a word.
  std::string out;
  bool previous_cased = false;
  for (char32_t cp : toCodePoints(text)) {
    std::string one = fromCodePoints(std::u32string(1, cp));
    if (isCased(cp)) {
      if (previous_cased) {
        out += toLower(one);
      } else {
        icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(one);
        unicode.toTitle(nullptr, icu::Locale::getRoot(),
                        U_TITLECASE_NO_BREAK_ADJUSTMENT | U_TITLECASE_NO_LOWERCASE);
        std::string titled;
        unicode.toUTF8String(titled);
        out += titled;
      }
      previous_cased = true;
    } else {
      out += one;
      previous_cased = false;
    }
  }
  return out;
}

std::string capitalizeString(std::string_view text) {
  std::u32string points = toCodePoints(text);
  if (points.empty()) return "";
  std::string first = fromCodePoints(std::u32string_view(points).substr(0, 1));
  std::string rest = fromCodePoints(std::u32string_view(points).substr(1));
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(first);
  unicode.toTitle(nullptr, icu::Locale::getRoot(),
                  U_TITLECASE_NO_BREAK_ADJUSTMENT | U_TITLECASE_NO_LOWERCASE);
  std::string titled;
  unicode.toUTF8String(titled);
  return titled + toLower(rest);
}

bool matchesAffix(const std::string& text, const Value& affix, bool prefix) {
  auto one = [&](const Value& candidate) {
    const std::string& a = requireString(prefix ? "startswith" : "endswith", candidate);
    if (a.size() > text.size()) return false;
    return prefix ? text.compare(0, a.size(), a) == 0
                  : text.compare(text.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.isList()) {
    return std::any_of(affix.asList().begin(), affix.asList().end(), one);
  }
  return one(affix);
}

// Python's str.splitlines: the line boundaries it recognises, without keepends.
std::vector<std::u32string> splitLines(std::string_view text) {
  std::vector<std::u32string> lines;
  std::u32string points = toCodePoints(text);
  std::u32string current;
  for (std::size_t i = 0; i < points.size(); ++i) {
    char32_t cp = points[i];
    bool boundary = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
                    cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
    if (!boundary) {
      current.push_back(cp);
      continue;
    }
    if (cp == '\r' && i + 1 < points.size() && points[i + 1] == '\n') ++i;
    lines.push_back(std::move(current));
    current.clear();
  }
  if (!current.empty()) lines.push_back(std::move(current));
  return lines;
}

std::string indentText(const std::string& text, const CallArgs& args) {
  const Value& width_arg = args.get(0, "width");
  std::string indention;
  if (width_arg.isString()) {
    indention = width_arg.asString();
  } else {
    int64_t width = width_arg.isUndefined() ? 4 : requireInt("indent", width_arg);
    indention.assign(static_cast<std::size_t>(std::clamp<int64_t>(width, 0, 1024)), ' ');
  }
  bool first = isTruthy(args.get(1, "first"));
  bool blank = isTruthy(args.get(2, "blank"));
  // Jinja appends a newline before splitting, so a trailing newline survives.
  std::vector<std::u32string> lines = splitLines(text + "\n");
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string line = fromCodePoints(lines[i]);
    if (i > 0) {
      out += "\n";
      if (blank || !line.empty()) out += indention;
    }
    out += line;
  }
  if (first) out = indention + out;
  return out;
}

// --- Numbers -------------------------------------------------------------------------------

Value toInt(const Value& value, const Value& default_value) {
  Value fallback = default_value.isUndefined() ? Value(int64_t{0}) : default_value;
  if (value.isInt()) return value;
  if (value.isBool()) return Value(int64_t{value.asBool() ? 1 : 0});
  if (value.isFloat()) {
    double number = value.asFloat();
    if (!std::isfinite(number) || std::fabs(number) >= 9.2e18) return fallback;
    return Value(static_cast<int64_t>(number));
  }
  if (value.isString()) {
    std::string text = stripChars(value.asString(), kUndefined, true, true);
    char* end = nullptr;
    errno = 0;
    long long parsed = std::strtoll(text.c_str(), &end, 10);
    if (!text.empty() && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(parsed));
    double number = std::strtod(text.c_str(), &end);
    if (!text.empty() && *end == '\0' && std::isfinite(number) && std::fabs(number) < 9.2e18) {
      return Value(static_cast<int64_t>(number));
    }
  }
  return fallback;
}

Value toFloat(const Value& value, const Value& default_value) {
  Value fallback = default_value.isUndefined() ? Value(0.0) : default_value;
  if (value.isNumber()) return Value(value.asNumber());
  if (value.isBool()) return Value(value.asBool() ? 1.0 : 0.0);
  if (value.isString()) {
    std::string text = stripChars(value.asString(), kUndefined, true, true);
    char* end = nullptr;
    double number = std::strtod(text.c_str(), &end);
    if (!text.empty() && *end == '\0') return Value(number);
  }
  return fallback;
}

Value roundNumber(const Value& value, const CallArgs& args) {
  if (!value.isNumber()) typeError("round", value);
  int64_t precision =
      args.get(0, "precision").isUndefined() ? 0 : requireInt("round", args.get(0, "precision"));
  const Value& method_arg = args.get(1, "method");
  std::string method = method_arg.isUndefined() ? "common" : requireString("round", method_arg);
  double number = value.asNumber();
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "floor") return Value(std::floor(number * scale) / scale);
  if (method == "ceil") return Value(std::ceil(number * scale) / scale);
  if (method != "common") throw RenderError("round: method must be common, ceil or floor");
  if (value.isInt() && precision >= 0) return value;  // Python's round(int, n) keeps the int
  if (precision >= 0 && precision <= 17) {
    // printf rounds the exact binary value half to even, as Python's round() does.
    char buffer[400];
    std::snprintf(buffer, sizeof(buffer), "%.*f", static_cast<int>(precision), number);
    return Value(std::strtod(buffer, nullptr));
  }
  return Value(std::nearbyint(number * scale) / scale);
}

// --- Sequences -----------------------------------------------------------------------------

// Orders two values for sort: numbers by value and strings by code point, case-folded
// unless case_sensitive, as Jinja's sort filter does.
int compareForSort(const Value& a, const Value& b, bool case_sensitive) {
  if (a.isNumber() || a.isBool()) {
    if (!(b.isNumber() || b.isBool()))
      throw RenderError("sort: cannot compare " + std::string(a.typeName()) + " with " +
                        std::string(b.typeName()));
    double x = a.isBool() ? (a.asBool() ? 1 : 0) : a.asNumber();
    double y = b.isBool() ? (b.asBool() ? 1 : 0) : b.asNumber();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.isString() && b.isString()) {
    if (case_sensitive) return a.asString().compare(b.asString());
    return toLower(a.asString()).compare(toLower(b.asString()));
  }
  throw RenderError("sort: cannot compare " + std::string(a.typeName()) + " with " +
                    std::string(b.typeName()));
}

// Looks up a dotted attribute path such as "function.name", as Jinja's attribute arguments do.
Value attributePath(const Value& item, const std::string& path) {
  Value current = item;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? getItem(current, Value(static_cast<int64_t>(std::stoll(part))))
                      : getAttribute(current, part);
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

ValueList sortValues(const Value& value, const CallArgs& args) {
  ValueList items = iterate(value);
  bool reverse = isTruthy(args.get(0, "reverse"));
  bool case_sensitive = isTruthy(args.get(1, "case_sensitive"));
  const Value& attribute = args.get(2, "attribute");
  auto key = [&](const Value& item) {
    return attribute.isUndefined() || attribute.isNone() ? item
                                                         : attributePath(item, textOf(attribute));
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    int order = compareForSort(key(a), key(b), case_sensitive);
    return reverse ? order > 0 : order < 0;
  });
  return items;
}

ValueList uniqueValues(const Value& value, const CallArgs& args) {
  bool case_sensitive = isTruthy(args.get(0, "case_sensitive"));
  const Value& attribute = args.get(1, "attribute");
  ValueList seen_keys;
  ValueList out;
  for (const Value& item : iterate(value)) {
    Value key = attribute.isUndefined() || attribute.isNone()
                    ? item
                    : attributePath(item, textOf(attribute));
    if (key.isString() && !case_sensitive) key = Value(toLower(key.asString()));
    bool seen = std::any_of(seen_keys.begin(), seen_keys.end(),
                            [&](const Value& other) { return valuesEqual(other, key); });
    if (seen) continue;
    seen_keys.push_back(key);
    out.push_back(item);
  }
  return out;
}

// select, reject, selectattr and rejectattr: the test name is the first argument after the
// attribute; without one, the item's truthiness decides.
ValueList selectValues(const Value& value, const CallArgs& args, bool by_attribute, bool keep) {
  std::size_t test_index = by_attribute ? 1 : 0;
  std::string attribute;
  if (by_attribute) attribute = requireString("selectattr", args.get(0, ""));
  CallArgs test_args;
  std::string test_name;
  if (args.positional.size() > test_index) {
    test_name = requireString("select", args.positional[test_index]);
    if (!isKnownTest(test_name)) throw RenderError("unknown test '" + test_name + "'");
    test_args.positional.assign(
        args.positional.begin() + static_cast<std::ptrdiff_t>(test_index) + 1,
        args.positional.end());
  }
  ValueList out;
  for (const Value& item : iterate(value)) {
    Value subject = by_attribute ? attributePath(item, attribute) : item;
    bool passed = test_name.empty() ? isTruthy(subject) : applyTest(test_name, subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return out;
}

ValueList mapValues(const Value& value, const CallArgs& args) {
  ValueList out;
  const Value& attribute = args.get(99, "attribute");
  if (!attribute.isUndefined()) {
    const Value& default_value = args.get(99, "default");
    for (const Value& item : iterate(value)) {
      Value mapped = attributePath(item, textOf(attribute));
      out.push_back(mapped.isUndefined() ? default_value : mapped);
    }
    return out;
  }
  if (args.positional.empty()) throw RenderError("map: expects a filter name or attribute=");
  std::string filter = requireString("map", args.positional[0]);
  if (!isKnownFilter(filter) || filter == "map")
    throw RenderError("map: unknown filter '" + filter + "'");
  CallArgs filter_args;
  filter_args.positional.assign(args.positional.begin() + 1, args.positional.end());
  filter_args.keyword = args.keyword;
  for (const Value& item : iterate(value)) out.push_back(applyFilter(filter, item, filter_args));
  return out;
}

ValueList dictItems(const ValueDict& dict) {
  ValueList items;
  for (const auto& [key, entry] : dict.entries) items.emplace_back(ValueList{Value(key), entry});
  return items;
}

std::size_t lengthOf(const Value& value) {
  if (value.isString()) return toCodePoints(value.asString()).size();
  if (value.isList()) return value.asList().size();
  if (value.isDict()) return value.asDict().entries.size();
  if (value.isNamespace()) return value.asNamespace().attributes.entries.size();
  if (value.isUndefined()) return 0;
  typeError("length", value);
}

}  // namespace

const Value& CallArgs::get(std::size_t index, std::string_view name) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [key, value] : keyword) {
    if (key == name) return value;
  }
  return kUndefined;
}

bool isKnownFilter(std::string_view name) { return kFilters.count(name) != 0; }
bool isKnownTest(std::string_view name) { return kTests.count(name) != 0; }

std::string toUpper(std::string_view text) {
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  unicode.toUpper(icu::Locale::getRoot());
  std::string out;
  unicode.toUTF8String(out);
  return out;
}

std::string toLower(std::string_view text) {
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  unicode.toLower(icu::Locale::getRoot());
  std::string out;
  unicode.toUTF8String(out);
  return out;
}

ValueList iterate(const Value& value) {
  if (value.isList()) return value.asList();
  if (value.isDict()) {
    ValueList keys;
    for (const auto& entry : value.asDict().entries) keys.emplace_back(entry.first);
    return keys;
  }
  if (value.isString()) {
    ValueList chars;
    for (char32_t cp : toCodePoints(value.asString()))
      chars.emplace_back(fromCodePoints(std::u32string(1, cp)));
    return chars;
  }
  if (value.isUndefined()) return {};
  throw RenderError("a value of type " + std::string(value.typeName()) + " is not iterable");
}

Value getAttribute(const Value& object, std::string_view name) {
  if (object.isDict()) {
    const Value* found = object.asDict().find(name);
    return found != nullptr ? *found : kUndefined;
  }
  if (object.isNamespace()) {
    const Value* found = object.asNamespace().attributes.find(name);
    return found != nullptr ? *found : kUndefined;
  }
  return kUndefined;
}

Value getItem(const Value& object, const Value& key) {
  if (object.isDict() || object.isNamespace()) {
    if (!key.isString()) return kUndefined;
    return getAttribute(object, key.asString());
  }
  if (object.isList() || object.isString()) {
    if (!key.isInt()) {
      if (key.isString() && object.isList()) return kUndefined;
      if (key.isString()) return kUndefined;
      throw RenderError("indices must be integers, not " + std::string(key.typeName()));
    }
    int64_t index = key.asInt();
    if (object.isList()) {
      auto size = static_cast<int64_t>(object.asList().size());
      if (index < 0) index += size;
      if (index < 0 || index >= size) return kUndefined;
      return object.asList()[static_cast<std::size_t>(index)];
    }
    std::u32string points = toCodePoints(object.asString());
    auto size = static_cast<int64_t>(points.size());
    if (index < 0) index += size;
    if (index < 0 || index >= size) return kUndefined;
    return Value(fromCodePoints(std::u32string(1, points[static_cast<std::size_t>(index)])));
  }
  return kUndefined;
}

Value getSlice(const Value& object, const Value& start_arg, const Value& stop_arg,
               const Value& step_arg) {
  auto bound = [](const Value& v, std::string_view what) -> std::optional<int64_t> {
    if (v.isUndefined() || v.isNone()) return std::nullopt;
    return requireInt(what, v);
  };
  int64_t step = bound(step_arg, "slice step").value_or(1);
  if (step == 0) throw RenderError("slice step cannot be zero");
  std::u32string points;
  int64_t size = 0;
  if (object.isList()) {
    size = static_cast<int64_t>(object.asList().size());
  } else if (object.isString()) {
    points = toCodePoints(object.asString());
    size = static_cast<int64_t>(points.size());
  } else {
    typeError("slicing", object);
  }
  // Python's slice.indices: clamp both bounds into range for the step's direction.
  auto clamp = [&](std::optional<int64_t> v, int64_t if_missing) {
    if (!v) return if_missing;
    int64_t x = *v < 0 ? *v + size : *v;
    if (step > 0) return std::clamp<int64_t>(x, 0, size);
    return std::clamp<int64_t>(x, -1, size - 1);
  };
  int64_t start = clamp(bound(start_arg, "slice start"), step > 0 ? 0 : size - 1);
  int64_t stop = clamp(bound(stop_arg, "slice stop"), step > 0 ? size : -1);
  ValueList list_out;
  std::u32string text_out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (object.isList()) {
      list_out.push_back(object.asList()[static_cast<std::size_t>(i)]);
    } else {
      text_out.push_back(points[static_cast<std::size_t>(i)]);
    }
  }
  if (object.isList()) return Value(std::move(list_out));
  return Value(fromCodePoints(text_out));
}

Value applyFilter(std::string_view name, const Value& operand, const CallArgs& args) {
  if (name == "trim") return Value(stripChars(textOf(operand), args.get(0, "chars"), true, true));
  if (name == "length" || name == "count") return Value(static_cast<int64_t>(lengthOf(operand)));
  if (name == "upper") return Value(toUpper(textOf(operand)));
  if (name == "lower") return Value(toLower(textOf(operand)));
  if (name == "title") return Value(titleCase(textOf(operand)));
  if (name == "capitalize") return Value(capitalizeString(textOf(operand)));
  if (name == "string") return Value(textOf(operand));
  if (name == "safe") return operand;
  if (name == "default" || name == "d") {
    bool use_default =
        operand.isUndefined() || (isTruthy(args.get(1, "boolean")) && !isTruthy(operand));
    if (!use_default) return operand;
    const Value& fallback = args.get(0, "default_value");
    return fallback.isUndefined() ? Value(std::string()) : fallback;
  }
  if (name == "first" || name == "last") {
    ValueList items = iterate(operand);
    if (items.empty()) return kUndefined;
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    std::string separator = args.get(0, "d").isUndefined() ? "" : textOf(args.get(0, "d"));
    const Value& attribute = args.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(operand)) {
      if (!first) out += separator;
      first = false;
      out += textOf(attribute.isUndefined() ? item : attributePath(item, textOf(attribute)));
    }
    return Value(std::move(out));
  }
  if (name == "tojson") {
    const Value& indent = args.get(0, "indent");
    return Value(toJson(
        operand, indent.isUndefined() || indent.isNone()
                     ? -1
                     : static_cast<int>(std::clamp<int64_t>(requireInt("tojson", indent), 0, 64))));
  }
  if (name == "int") return toInt(operand, args.get(0, "default"));
  if (name == "float") return toFloat(operand, args.get(0, "default"));
  if (name == "abs") {
    if (operand.isInt()) {
      if (operand.asInt() == INT64_MIN) throw RenderError("abs: integer overflow");
      return Value(operand.asInt() < 0 ? -operand.asInt() : operand.asInt());
    }
    if (operand.isFloat()) return Value(std::fabs(operand.asFloat()));
    typeError("abs", operand);
  }
  if (name == "round") return roundNumber(operand, args);
  if (name == "list") return Value(iterate(operand));
  if (name == "reverse") {
    if (operand.isString()) {
      std::u32string points = toCodePoints(operand.asString());
      std::reverse(points.begin(), points.end());
      return Value(fromCodePoints(points));
    }
    ValueList items = iterate(operand);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "items") {
    if (operand.isUndefined()) return Value(ValueList{});
    if (operand.isDict()) return Value(dictItems(operand.asDict()));
    if (operand.isNamespace()) return Value(dictItems(operand.asNamespace().attributes));
    typeError("items", operand);
  }
  if (name == "dictsort") {
    if (!operand.isDict()) typeError("dictsort", operand);
    ValueList items = dictItems(operand.asDict());
    bool case_sensitive = isTruthy(args.get(0, "case_sensitive"));
    bool by_value = args.get(1, "by").isString() && args.get(1, "by").asString() == "value";
    bool reverse = isTruthy(args.get(2, "reverse"));
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      int order = compareForSort(a.asList()[by_value ? 1 : 0], b.asList()[by_value ? 1 : 0],
                                 case_sensitive);
      return reverse ? order > 0 : order < 0;
    });
    return Value(std::move(items));
  }
  if (name == "indent") return Value(indentText(textOf(operand), args));
  if (name == "replace") {
    const Value& count = args.get(2, "count");
    return Value(
        replaceString(textOf(operand), textOf(args.get(0, "old")), textOf(args.get(1, "new")),
                      count.isUndefined() || count.isNone() ? -1 : requireInt("replace", count)));
  }
  if (name == "sort") return Value(sortValues(operand, args));
  if (name == "unique") return Value(uniqueValues(operand, args));
  if (name == "map") return Value(mapValues(operand, args));
  if (name == "select") return Value(selectValues(operand, args, false, true));
  if (name == "reject") return Value(selectValues(operand, args, false, false));
  if (name == "selectattr") return Value(selectValues(operand, args, true, true));
  if (name == "rejectattr") return Value(selectValues(operand, args, true, false));
  throw RenderError("unknown filter '" + std::string(name) + "'");
}

bool applyTest(std::string_view name, const Value& operand, const CallArgs& args) {
  if (name == "defined") return !operand.isUndefined();
  if (name == "undefined") return operand.isUndefined();
  if (name == "none") return operand.isNone();
  if (name == "string") return operand.isString();
  // Python's bool is a numbers.Number, and Jinja's number test accepts it.
  if (name == "number") return operand.isNumber() || operand.isBool();
  if (name == "integer") return operand.isInt();
  if (name == "float") return operand.isFloat();
  if (name == "boolean") return operand.isBool();
  if (name == "true") return operand.isBool() && operand.asBool();
  if (name == "false") return operand.isBool() && !operand.asBool();
  if (name == "mapping") return operand.isDict();
  if (name == "iterable") return operand.isList() || operand.isDict() || operand.isString();
  if (name == "sequence") return operand.isList() || operand.isDict() || operand.isString();
  if (name == "callable") return operand.isMacro();
  if (name == "lower")
    return operand.isString() && toLower(operand.asString()) == operand.asString();
  if (name == "upper")
    return operand.isString() && toUpper(operand.asString()) == operand.asString();
  if (name == "even" || name == "odd") {
    int64_t number = requireInt(name, operand);
    return (number % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    int64_t divisor = requireInt("divisibleby", args.get(0, "num"));
    if (divisor == 0) throw RenderError("divisibleby: division by zero");
    return requireInt("divisibleby", operand) % divisor == 0;
  }
  if (name == "equalto" || name == "eq") return valuesEqual(operand, args.get(0, "other"));
  if (name == "ne") return !valuesEqual(operand, args.get(0, "other"));
  if (name == "sameas") {
    const Value& other = args.get(0, "other");
    if (operand.isNone() || operand.isBool() || operand.isUndefined())
      return valuesEqual(operand, other) && operand.typeName() == other.typeName();
    return false;
  }
  throw RenderError("unknown test '" + std::string(name) + "'");
}

bool hasMethod(const Value& object, std::string_view name) {
  static const std::unordered_set<std::string_view> kStringMethods = {
      "strip", "lstrip", "rstrip", "split",      "startswith", "endswith",
      "upper", "lower",  "title",  "capitalize", "replace"};
  static const std::unordered_set<std::string_view> kDictMethods = {"items", "keys", "values",
                                                                    "get"};
  if (object.isString()) return kStringMethods.count(name) != 0;
  if (object.isDict()) return kDictMethods.count(name) != 0;
  return false;
}

Value callMethod(const Value& object, std::string_view name, const CallArgs& args) {
  if (object.isString()) {
    const std::string& text = object.asString();
    if (name == "strip") return Value(stripChars(text, args.get(0, "chars"), true, true));
    if (name == "lstrip") return Value(stripChars(text, args.get(0, "chars"), true, false));
    if (name == "rstrip") return Value(stripChars(text, args.get(0, "chars"), false, true));
    if (name == "split")
      return Value(splitString(text, args.get(0, "sep"), args.get(1, "maxsplit")));
    if (name == "startswith") return Value(matchesAffix(text, args.get(0, "prefix"), true));
    if (name == "endswith") return Value(matchesAffix(text, args.get(0, "suffix"), false));
    if (name == "upper") return Value(toUpper(text));
    if (name == "lower") return Value(toLower(text));
    if (name == "title") return Value(titleCase(text));
    if (name == "capitalize") return Value(capitalizeString(text));
    if (name == "replace") {
      const Value& count = args.get(2, "count");
      return Value(replaceString(text, requireString("replace", args.get(0, "old")),
                                 requireString("replace", args.get(1, "new")),
                                 count.isUndefined() ? -1 : requireInt("replace", count)));
    }
  }
  if (object.isDict()) {
    const ValueDict& dict = object.asDict();
    if (name == "items") return Value(dictItems(dict));
    if (name == "keys") return Value(iterate(object));
    if (name == "values") {
      ValueList values;
      for (const auto& entry : dict.entries) values.push_back(entry.second);
      return Value(std::move(values));
    }
    if (name == "get") {
      const Value& key = args.get(0, "key");
      const Value* found = key.isString() ? dict.find(key.asString()) : nullptr;
      if (found != nullptr) return *found;
      const Value& fallback = args.get(1, "default");
      return fallback.isUndefined() ? Value(None{}) : fallback;
    }
  }
  throw RenderError("a value of type " + std::string(object.typeName()) + " has no method '" +
                    std::string(name) + "'");
}

}  // namespace hfchain::chat_template
