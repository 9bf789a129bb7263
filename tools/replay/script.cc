// Parsing of the JSON script form.
#include "replay/script.h"

#include <set>

namespace hfchain::replay {
namespace {

// Upper bound for one "repeat" part, so that a typo cannot exhaust memory.
constexpr int64_t kMaxRepeatBytes = int64_t{256} << 20;

Error scriptError(const std::string& where, const std::string& problem) {
  return makeError(ErrorClass::kConfigRejected,
                   "invalid upstream script at " + where + ": " + problem);
}

int hexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> decodeHex(const nlohmann::json& node, const std::string& where) {
  if (!node.is_string()) return scriptError(where, "\"hex\" must be a string");
  const std::string hex = node.get<std::string>();
  if (hex.size() % 2 != 0) {
    return scriptError(where, "\"hex\" has an odd number of digits: \"" + hex + "\"");
  }
  std::string bytes;
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int high = hexDigitValue(hex[i]);
    const int low = hexDigitValue(hex[i + 1]);
    if (high < 0 || low < 0) {
      return scriptError(where, "\"hex\" contains a non-hex digit: \"" + hex + "\"");
    }
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  return bytes;
}

// Decodes one part of a "parts" list: {"text"}, {"hex"} or {"repeat": "a", "count": N}.
Result<std::string> decodePart(const nlohmann::json& part, const std::string& where) {
  if (!part.is_object()) return scriptError(where, "a part must be an object");
  if (part.contains("text")) {
    if (!part["text"].is_string()) return scriptError(where, "\"text\" must be a string");
    return part["text"].get<std::string>();
  }
  if (part.contains("hex")) return decodeHex(part["hex"], where);
  if (part.contains("repeat")) {
    const nlohmann::json& unit = part["repeat"];
    const nlohmann::json count = part.value("count", nlohmann::json());
    if (!unit.is_string() || unit.get<std::string>().empty()) {
      return scriptError(where, "\"repeat\" must be a non-empty string");
    }
    if (!count.is_number_integer() || count.get<int64_t>() < 0) {
      return scriptError(where, "\"count\" must be an integer >= 0");
    }
    const std::string text = unit.get<std::string>();
    const int64_t total = count.get<int64_t>() * static_cast<int64_t>(text.size());
    if (count.get<int64_t>() > kMaxRepeatBytes || total > kMaxRepeatBytes) {
      return scriptError(
          where, "a repeat part may produce at most " + std::to_string(kMaxRepeatBytes) + " bytes");
    }
    std::string bytes;
    bytes.reserve(static_cast<size_t>(total));
    for (int64_t i = 0; i < count.get<int64_t>(); ++i) bytes += text;
    return bytes;
  }
  return scriptError(where, "a part needs \"text\", \"hex\" or \"repeat\"");
}

Result<ScriptChunk> parseChunk(const nlohmann::json& node, const std::string& where) {
  if (!node.is_object()) return scriptError(where, "a chunk must be an object");
  static const std::set<std::string> kKeys = {"text", "hex", "parts", "delay_ms"};
  int body_keys = 0;
  for (const auto& [key, value] : node.items()) {
    if (!kKeys.count(key)) return scriptError(where, "unknown chunk field \"" + key + "\"");
    if (key != "delay_ms") ++body_keys;
  }
  if (body_keys != 1) {
    return scriptError(where, "a chunk needs exactly one of \"text\", \"hex\" and \"parts\"");
  }

  ScriptChunk chunk;
  if (node.contains("delay_ms")) {
    const nlohmann::json& delay = node["delay_ms"];
    if (!delay.is_number_integer() || delay.get<int64_t>() < 0 ||
        delay.get<int64_t>() > 3'600'000) {
      return scriptError(where, "\"delay_ms\" must be an integer from 0 to 3600000");
    }
    chunk.delay_ms = delay.get<int>();
  }
  if (node.contains("text")) {
    if (!node["text"].is_string()) return scriptError(where, "\"text\" must be a string");
    chunk.bytes = node["text"].get<std::string>();
  } else if (node.contains("hex")) {
    auto bytes = decodeHex(node["hex"], where);
    if (!bytes) return bytes.error();
    chunk.bytes = std::move(bytes).value();
  } else {
    const nlohmann::json& parts = node["parts"];
    if (!parts.is_array()) return scriptError(where, "\"parts\" must be an array");
    for (size_t i = 0; i < parts.size(); ++i) {
      auto bytes = decodePart(parts[i], where + ".parts[" + std::to_string(i) + "]");
      if (!bytes) return bytes.error();
      chunk.bytes += bytes.value();
    }
  }
  return chunk;
}

Result<ScriptedExchange> parseExchange(const nlohmann::json& node, const std::string& where) {
  if (!node.is_object()) return scriptError(where, "an exchange must be an object");
  static const std::set<std::string> kKeys = {
      "status", "headers", "chunks", "write_size", "end", "repeat", "reset_after_bytes", "note"};
  for (const auto& [key, value] : node.items()) {
    if (!kKeys.count(key)) return scriptError(where, "unknown exchange field \"" + key + "\"");
  }

  ScriptedExchange exchange;
  const nlohmann::json status = node.value("status", nlohmann::json());
  if (!status.is_null()) {
    if (!status.is_number_integer() || status.get<int>() < 100 || status.get<int>() > 999) {
      return scriptError(where, "\"status\" must be null or an integer from 100 to 999");
    }
    exchange.status = status.get<int>();
  }

  const nlohmann::json headers = node.value("headers", nlohmann::json::object());
  if (!headers.is_object()) return scriptError(where, "\"headers\" must be an object");
  for (const auto& [name, value] : headers.items()) {
    if (!value.is_string()) {
      return scriptError(where, "header \"" + name + "\" must have a string value");
    }
    exchange.headers.emplace_back(name, value.get<std::string>());
  }

  const nlohmann::json chunks = node.value("chunks", nlohmann::json::array());
  if (!chunks.is_array()) return scriptError(where, "\"chunks\" must be an array");
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto chunk = parseChunk(chunks[i], where + ".chunks[" + std::to_string(i) + "]");
    if (!chunk) return chunk.error();
    exchange.chunks.push_back(std::move(chunk).value());
  }

  if (node.contains("write_size")) {
    const nlohmann::json& size = node["write_size"];
    if (!size.is_number_integer() || size.get<int64_t>() < 1) {
      return scriptError(where, "\"write_size\" must be an integer >= 1");
    }
    exchange.write_size = size.get<size_t>();
  }

  const std::string end = node.value("end", std::string("close"));
  if (end == "close") {
    exchange.end = ExchangeEnd::kClose;
  } else if (end == "reset") {
    exchange.end = ExchangeEnd::kReset;
  } else if (end == "stall") {
    exchange.end = ExchangeEnd::kStall;
  } else {
    return scriptError(where,
                       "\"end\" must be \"close\", \"reset\" or \"stall\", got \"" + end + "\"");
  }

  if (node.contains("repeat")) {
    if (!node["repeat"].is_boolean()) return scriptError(where, "\"repeat\" must be a boolean");
    exchange.repeat = node["repeat"].get<bool>();
  }
  if (node.contains("reset_after_bytes")) {
    const nlohmann::json& bytes = node["reset_after_bytes"];
    if (!bytes.is_number_integer() || bytes.get<int64_t>() < 0) {
      return scriptError(where, "\"reset_after_bytes\" must be an integer >= 0");
    }
    exchange.reset_after_bytes = bytes.get<size_t>();
  }
  return exchange;
}

}  // namespace

Result<Script> parseScript(const nlohmann::json& exchanges) {
  if (!exchanges.is_array()) return scriptError("top level", "a script must be a JSON array");
  Script script;
  for (size_t i = 0; i < exchanges.size(); ++i) {
    auto exchange = parseExchange(exchanges[i], "exchange " + std::to_string(i));
    if (!exchange) return exchange.error();
    script.push_back(std::move(exchange).value());
  }
  return script;
}

Result<std::map<std::string, Script>> parseUpstreamScripts(const nlohmann::json& upstream_script) {
  if (!upstream_script.is_object()) {
    return scriptError("top level", "\"upstream_script\" must map upstream names to scripts");
  }
  std::map<std::string, Script> scripts;
  for (const auto& [name, exchanges] : upstream_script.items()) {
    auto script = parseScript(exchanges);
    if (!script) {
      Error error = script.error();
      error.message = "upstream \"" + name + "\": " + error.message;
      return error;
    }
    scripts.emplace(name, std::move(script).value());
  }
  return scripts;
}

}  // namespace hfchain::replay
