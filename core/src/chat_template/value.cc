// Conversions of chat template values: truthiness, equality, text, JSON and UTF-8.
#include "chat_template/value.h"

#include <unicode/uchar.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tokenizer/unicode_text.h"

namespace hfchain::chat_template {

const Value* ValueDict::find(std::string_view key) const {
  for (const auto& entry : entries) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

Value* ValueDict::find(std::string_view key) {
  for (auto& entry : entries) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

void ValueDict::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  entries.emplace_back(std::move(key), std::move(value));
}

std::string_view Value::typeName() const {
  switch (storage_.index()) {
    case 0:
      return "undefined";
    case 1:
      return "none";
    case 2:
      return "bool";
    case 3:
      return "int";
    case 4:
      return "float";
    case 5:
      return "str";
    case 6:
      return "list";
    case 7:
      return "dict";
    case 8:
      return "namespace";
    default:
      return "macro";
  }
}

bool isTruthy(const Value& value) {
  if (value.isUndefined() || value.isNone()) return false;
  if (value.isBool()) return value.asBool();
  if (value.isInt()) return value.asInt() != 0;
  if (value.isFloat()) return value.asFloat() != 0.0;
  if (value.isString()) return !value.asString().empty();
  if (value.isList()) return !value.asList().empty();
  if (value.isDict()) return !value.asDict().entries.empty();
  return true;
}

bool valuesEqual(const Value& left, const Value& right) {
  if (left.isNumber() && right.isNumber()) {
    if (left.isInt() && right.isInt()) return left.asInt() == right.asInt();
    return left.asNumber() == right.asNumber();
  }
  // Python's bool is an int, so True == 1; Jinja templates rarely rely on it, but keep it.
  if (left.isBool() && right.isNumber()) return (left.asBool() ? 1.0 : 0.0) == right.asNumber();
  if (left.isNumber() && right.isBool()) return valuesEqual(right, left);
  if (left.isBool() && right.isBool()) return left.asBool() == right.asBool();
  if (left.isString() && right.isString()) return left.asString() == right.asString();
  if (left.isNone() && right.isNone()) return true;
  if (left.isUndefined() && right.isUndefined()) return true;
  if (left.isList() && right.isList()) {
    const ValueList& a = left.asList();
    const ValueList& b = right.asList();
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!valuesEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (left.isDict() && right.isDict()) {
    const ValueDict& a = left.asDict();
    const ValueDict& b = right.asDict();
    if (a.entries.size() != b.entries.size()) return false;
    for (const auto& [key, value] : a.entries) {
      const Value* other = b.find(key);
      if (other == nullptr || !valuesEqual(value, *other)) return false;
    }
    return true;
  }
  if (left.isNamespace() && right.isNamespace()) {
    return &left.asNamespace() == &right.asNamespace();
  }
  return false;
}

std::string formatFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // The shortest round-trip digits in scientific form, e.g. "1.2345e+02", then laid out the
  // way Python's float.__repr__ does.
  char buffer[64];
  auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string scientific(buffer, end);
  std::size_t e_pos = scientific.find('e');
  std::string mantissa = scientific.substr(0, e_pos);
  int exponent = std::stoi(scientific.substr(e_pos + 1));
  bool negative = !mantissa.empty() && mantissa[0] == '-';
  std::string digits;
  for (char c : mantissa) {
    if (c >= '0' && c <= '9') digits.push_back(c);
  }
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp_text[16];
    std::snprintf(exp_text, sizeof(exp_text), "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return out + exp_text;
  }
  if (exponent < 0) {
    out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    return out;
  }
  auto int_digits = static_cast<std::size_t>(exponent + 1);
  if (digits.size() <= int_digits) {
    out += digits + std::string(int_digits - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, int_digits) + "." + digits.substr(int_digits);
  }
  return out;
}

namespace {

void appendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (byte < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", byte);
          out += escape;
        } else {
          // ensure_ascii=False: every other character, U+2028 included, is written as is.
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void appendNewline(std::string& out, int indent, int depth) {
  out.push_back('\n');
  out.append(static_cast<std::size_t>(indent * depth), ' ');
}

void appendJson(std::string& out, const Value& value, int indent, int depth) {
  if (depth > 512) throw RenderError("tojson: value nested deeper than 512 levels");
  if (value.isNone() || value.isUndefined()) {
    out += "null";
  } else if (value.isBool()) {
    out += value.asBool() ? "true" : "false";
  } else if (value.isInt()) {
    out += std::to_string(value.asInt());
  } else if (value.isFloat()) {
    double number = value.asFloat();
    // json.dumps writes the non-finite values as JavaScript literals.
    if (std::isnan(number)) {
      out += "NaN";
    } else if (std::isinf(number)) {
      out += number > 0 ? "Infinity" : "-Infinity";
    } else {
      out += formatFloat(number);
    }
  } else if (value.isString()) {
    appendJsonString(out, value.asString());
  } else if (value.isList()) {
    const ValueList& list = value.asList();
    out.push_back('[');
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out += indent >= 0 ? "," : ", ";
      if (indent >= 0) appendNewline(out, indent, depth + 1);
      appendJson(out, list[i], indent, depth + 1);
    }
    if (indent >= 0 && !list.empty()) appendNewline(out, indent, depth);
    out.push_back(']');
  } else if (value.isDict() || value.isNamespace()) {
    const ValueDict& dict = value.isDict() ? value.asDict() : value.asNamespace().attributes;
    out.push_back('{');
    for (std::size_t i = 0; i < dict.entries.size(); ++i) {
      if (i > 0) out += indent >= 0 ? "," : ", ";
      if (indent >= 0) appendNewline(out, indent, depth + 1);
      appendJsonString(out, dict.entries[i].first);
      out += ": ";
      appendJson(out, dict.entries[i].second, indent, depth + 1);
    }
    if (indent >= 0 && !dict.entries.empty()) appendNewline(out, indent, depth);
    out.push_back('}');
  } else {
    throw RenderError("tojson: a macro is not JSON serializable");
  }
}

}  // namespace

std::string toJson(const Value& value, int indent) {
  std::string out;
  appendJson(out, value, indent, 0);
  return out;
}

std::string toText(const Value& value) {
  if (value.isUndefined() || value.isNone()) return "";
  if (value.isBool()) return value.asBool() ? "true" : "false";
  if (value.isInt()) return std::to_string(value.asInt());
  if (value.isFloat()) return formatFloat(value.asFloat());
  if (value.isString()) return value.asString();
  if (value.isMacro()) return "";
  return toJson(value, -1);
}

std::u32string toCodePoints(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) out.push_back(tokenizer_detail::nextCodePoint(text, pos));
  return out;
}

std::string fromCodePoints(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) tokenizer_detail::appendUtf8(out, cp);
  return out;
}

bool isPythonSpace(char32_t cp) {
  // CPython's definition: bidirectional class WS, B or S, or general category Zs.
  auto c = static_cast<UChar32>(cp);
  if (u_charType(c) == U_SPACE_SEPARATOR) return true;
  UCharDirection direction = u_charDirection(c);
  return direction == U_WHITE_SPACE_NEUTRAL || direction == U_BLOCK_SEPARATOR ||
         direction == U_SEGMENT_SEPARATOR;
}

}  // namespace hfchain::chat_template
