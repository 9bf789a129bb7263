// Prices per model in USD per million input and output tokens, read from the budget link's
// `prices` setting or from the YAML file named by `prices_file`.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace hfchain::plugins::budget {

struct ModelPrice {
  double input_usd_per_million = 0;
  double output_usd_per_million = 0;
};

// Immutable once built, so it may be read from any number of threads.
class PriceTable {
 public:
  // The model id that prices every model without an entry of its own.
  static constexpr const char* kDefaultModel = "*";

  // Builds the table from the link settings: `prices` (an object of model id to
  // {input: USD, output: USD} per million tokens) or `prices_file` (a YAML file with the same
  // object under a top-level `prices:` key; a relative path is resolved against `base_dir`,
  // the folder of the config file). Both missing gives an empty table, which prices nothing.
  // Returns the table or an error naming the setting, the model, the field and the fix.
  static std::variant<PriceTable, std::string> fromSettings(const nlohmann::json& settings,
                                                            const std::string& base_dir);
  // Builds the table from the `prices` object itself; `source` starts every error message.
  static std::variant<PriceTable, std::string> fromJson(const nlohmann::json& prices,
                                                        const std::string& source);
  // Builds the table from a YAML file; errors start with `path:line:column`.
  static std::variant<PriceTable, std::string> fromYamlFile(const std::string& path);

  // Returns the price of `model`, else the "*" entry, else null.
  const ModelPrice* find(std::string_view model) const;
  // Returns the cost in USD of the given token counts, or nullopt when `model` has no price.
  std::optional<double> cost(std::string_view model, int64_t input_tokens,
                             int64_t output_tokens) const;
  size_t size() const { return prices_.size(); }

 private:
  std::map<std::string, ModelPrice, std::less<>> prices_;
};

}  // namespace hfchain::plugins::budget
