// Reading and validating the price table.
#include "price_table.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace hfchain::plugins::budget {
namespace {

constexpr const char* kEntryShape =
    "{input: <USD per million input tokens>, output: <USD per million output tokens>}";

struct EntryError {
  std::string message;  // empty when the entry is valid
  std::string field;    // the field it is about, empty for the entry as a whole
};

std::string quoted(const std::string& model) { return nlohmann::json(model).dump(); }

EntryError readPrice(const nlohmann::json& entry, const std::string& field, double& out) {
  const std::string kind = field == "input" ? "input" : "output";
  if (!entry.contains(field)) {
    return {field + " is missing; write " + field + ": <USD per million " + kind +
                " tokens>, e.g. {input: 0.2, output: 0.6}",
            ""};
  }
  const nlohmann::json& value = entry[field];
  if (!value.is_number()) {
    return {field + " is " + value.dump() + "; write a number of USD per million " + kind +
                " tokens, e.g. 0.2",
            field};
  }
  out = value.get<double>();
  if (!std::isfinite(out) || out < 0) {
    return {field + " is " + value.dump() + "; write 0 or more USD per million " + kind + " tokens",
            field};
  }
  return {};
}

// Validates one model's entry; the message leaves out the `prices."<model>"` prefix.
EntryError readEntry(const nlohmann::json& entry, ModelPrice& price) {
  if (!entry.is_object()) return {"is " + entry.dump() + "; write " + kEntryShape, ""};
  for (const auto& [field, value] : entry.items()) {
    if (field != "input" && field != "output")
      return {"has unknown field \"" + field + "\"; the fields are input and output", field};
  }
  if (EntryError error = readPrice(entry, "input", price.input_usd_per_million);
      !error.message.empty())
    return error;
  return readPrice(entry, "output", price.output_usd_per_million);
}

const char* kEmptyModelError =
    "prices has an empty model id; write the model id as the target names it, or \"*\" for "
    "the price of every other model";

// Converts a YAML node to JSON: plain scalars that read as numbers become numbers, so that a
// quoted "0.2" is still reported as a string.
nlohmann::json toJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& item : node) object[item.first.as<std::string>()] = toJson(item.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const auto& item : node) array.push_back(toJson(item));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "?") {
        double number = 0;
        if (YAML::convert<double>::decode(node, number)) return number;
        if (text == "true" || text == "false") return text == "true";
      }
      return text;
    }
    default:
      return nullptr;
  }
}

std::string position(const std::string& path, const YAML::Mark& mark) {
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

std::variant<PriceTable, std::string> PriceTable::fromJson(const nlohmann::json& prices,
                                                           const std::string& source) {
  if (!prices.is_object()) {
    return source + ": prices is " + prices.dump() + "; write an object of model id to " +
           kEntryShape;
  }
  PriceTable table;
  for (const auto& [model, entry] : prices.items()) {
    if (model.empty()) return source + ": " + kEmptyModelError;
    ModelPrice price;
    if (EntryError error = readEntry(entry, price); !error.message.empty())
      return source + ": prices." + quoted(model) + " " + error.message;
    table.prices_[model] = price;
  }
  return table;
}

std::variant<PriceTable, std::string> PriceTable::fromYamlFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return "prices_file " + path + " cannot be read (" + std::strerror(errno) +
           "); check the path, which is relative to the config file's folder";
  } catch (const YAML::Exception& e) {
    return position(path, e.mark) + ": invalid YAML: " + e.msg;
  }
  if (!root.IsMap() || !root["prices"]) {
    return path + ": no top-level prices: key; write prices: {\"<model id>\": " + kEntryShape + "}";
  }
  const YAML::Node prices = root["prices"];
  if (!prices.IsMap()) {
    return position(path, prices.Mark()) + ": prices must be a map of model id to " + kEntryShape;
  }
  PriceTable table;
  for (const auto& item : prices) {
    const std::string model = item.first.as<std::string>();
    if (model.empty()) return position(path, item.first.Mark()) + ": " + kEmptyModelError;
    ModelPrice price;
    EntryError error = readEntry(toJson(item.second), price);
    if (!error.message.empty()) {
      YAML::Mark mark = item.second.Mark();
      if (!error.field.empty() && item.second.IsMap()) {
        for (const auto& field : item.second) {
          if (field.first.as<std::string>() == error.field) mark = field.first.Mark();
        }
      }
      return position(path, mark) + ": prices." + quoted(model) + " " + error.message;
    }
    table.prices_[model] = price;
  }
  return table;
}

std::variant<PriceTable, std::string> PriceTable::fromSettings(const nlohmann::json& settings,
                                                               const std::string& base_dir) {
  const bool inline_prices = settings.is_object() && settings.contains("prices");
  const bool file_prices = settings.is_object() && settings.contains("prices_file");
  if (inline_prices && file_prices) {
    return std::string(
        "budget settings: both prices and prices_file are set; keep one of them, because "
        "the table comes from exactly one place");
  }
  if (inline_prices) return fromJson(settings["prices"], "budget settings");
  if (!file_prices) return PriceTable();
  const nlohmann::json& file = settings["prices_file"];
  if (!file.is_string() || file.get<std::string>().empty()) {
    return "budget settings: prices_file is " + file.dump() +
           "; write the path of a YAML file with a top-level prices: key";
  }
  std::filesystem::path path = file.get<std::string>();
  if (path.is_relative() && !base_dir.empty()) path = std::filesystem::path(base_dir) / path;
  return fromYamlFile(path.string());
}

const ModelPrice* PriceTable::find(std::string_view model) const {
  if (auto exact = prices_.find(model); exact != prices_.end()) return &exact->second;
  if (auto fallback = prices_.find(std::string_view(kDefaultModel)); fallback != prices_.end())
    return &fallback->second;
  return nullptr;
}

std::optional<double> PriceTable::cost(std::string_view model, int64_t input_tokens,
                                       int64_t output_tokens) const {
  const ModelPrice* price = find(model);
  if (price == nullptr) return std::nullopt;
  return (static_cast<double>(input_tokens) * price->input_usd_per_million +
          static_cast<double>(output_tokens) * price->output_usd_per_million) /
         1e6;
}

}  // namespace hfchain::plugins::budget
