// The budget link's price table: look-ups, the YAML file and validation errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/budget/price_table.cc"

namespace hfchain::plugins::budget {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

PriceTable tableOf(const json& settings, const std::string& base_dir = "") {
  auto result = PriceTable::fromSettings(settings, base_dir);
  if (auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << *error;
    return {};
  }
  return std::get<PriceTable>(result);
}

std::string errorOf(const json& settings, const std::string& base_dir = "") {
  auto result = PriceTable::fromSettings(settings, base_dir);
  if (std::holds_alternative<PriceTable>(result)) return "(accepted)";
  return std::get<std::string>(result);
}

std::string writeTemp(const std::string& name, const std::string& text) {
  fs::path path =
      fs::temp_directory_path() / ("hfchain-prices-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(PriceTable, ExactModelWins) {
  PriceTable table = tableOf(json::parse(R"({"prices":{
      "meta-llama/Llama-3.1-8B-Instruct":{"input":0.2,"output":0.6},
      "*":{"input":1,"output":2}}})"));
  const ModelPrice* price = table.find("meta-llama/Llama-3.1-8B-Instruct");
  ASSERT_NE(price, nullptr);
  EXPECT_DOUBLE_EQ(price->input_usd_per_million, 0.2);
  EXPECT_DOUBLE_EQ(price->output_usd_per_million, 0.6);
  ASSERT_TRUE(table.cost("meta-llama/Llama-3.1-8B-Instruct", 1'000'000, 500'000));
  EXPECT_DOUBLE_EQ(*table.cost("meta-llama/Llama-3.1-8B-Instruct", 1'000'000, 500'000), 0.5);
}

TEST(PriceTable, DefaultPricesOtherModels) {
  PriceTable table = tableOf(json::parse(R"({"prices":{"*":{"input":1,"output":2}}})"));
  ASSERT_NE(table.find("any/model"), nullptr);
  EXPECT_DOUBLE_EQ(*table.cost("any/model", 2'000'000, 1'000'000), 4.0);
}

TEST(PriceTable, UnpricedModelHasNoCost) {
  PriceTable table = tableOf(json::parse(R"({"prices":{"a":{"input":1,"output":2}}})"));
  EXPECT_EQ(table.find("b"), nullptr);
  EXPECT_FALSE(table.cost("b", 10, 10).has_value());
}

TEST(PriceTable, NoPricesGivesEmptyTable) {
  PriceTable table = tableOf(json::object());
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.cost("m", 1, 1).has_value());
}

TEST(PriceTable, ZeroPriceIsAllowed) {
  PriceTable table = tableOf(json::parse(R"({"prices":{"free":{"input":0,"output":0}}})"));
  ASSERT_TRUE(table.cost("free", 100, 100).has_value());
  EXPECT_EQ(*table.cost("free", 100, 100), 0.0);
}

TEST(PriceTable, SettingErrorsNameModelAndField) {
  struct Case {
    std::string settings;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"({"prices":{"m":{"input":0.2}}})",
       "budget settings: prices.\"m\" output is missing; write output: <USD per million "
       "output tokens>, e.g. {input: 0.2, output: 0.6}"},
      {R"({"prices":{"m":{"input":"0.2","output":1}}})",
       "budget settings: prices.\"m\" input is \"0.2\"; write a number of USD per million input "
       "tokens, e.g. 0.2"},
      {R"({"prices":{"m":{"input":-1,"output":1}}})",
       "budget settings: prices.\"m\" input is -1; write 0 or more USD per million input tokens"},
      {R"({"prices":{"m":{"input":1,"output":1,"cached":0.1}}})",
       "budget settings: prices.\"m\" has unknown field \"cached\"; the fields are input and "
       "output"},
      {R"({"prices":{"m":0.2}})",
       "budget settings: prices.\"m\" is 0.2; write {input: <USD per million input tokens>, "
       "output: <USD per million output tokens>}"},
      {R"({"prices":[1]})", "budget settings: prices is [1]; write an object of model id to"},
      {R"({"prices":{"":{"input":1,"output":1}}})", "prices has an empty model id"},
      {R"({"prices":{},"prices_file":"p.yaml"})",
       "both prices and prices_file are set; keep one of them"},
      {R"({"prices_file":3})", "budget settings: prices_file is 3; write the path of a YAML file"},
  };
  for (const Case& c : cases) {
    std::string error = errorOf(json::parse(c.settings));
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.settings << "\n" << error;
  }
}

TEST(PriceTable, YamlFileIsRelativeToBaseDir) {
  std::string path = writeTemp("ok.yaml",
                               "prices:\n"
                               "  \"meta-llama/Llama-3.1-8B-Instruct\": {input: 0.2, output: 0.6}\n"
                               "  \"*\":\n"
                               "    input: 1\n"
                               "    output: 3\n");
  fs::path file = path;
  PriceTable table =
      tableOf(json{{"prices_file", file.filename().string()}}, file.parent_path().string());
  EXPECT_EQ(table.size(), 2u);
  EXPECT_DOUBLE_EQ(*table.cost("meta-llama/Llama-3.1-8B-Instruct", 1'000'000, 0), 0.2);
  EXPECT_DOUBLE_EQ(*table.cost("other", 0, 1'000'000), 3.0);
  fs::remove(path);
}

TEST(PriceTable, YamlErrorsHavePosition) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"prices:\n  m:\n    input: 0.2\n    output: cheap\n",
       ":4:5: prices.\"m\" output is \"cheap\"; write a number of USD per million output tokens"},
      {"prices:\n  m:\n    input: \"0.2\"\n    output: 1\n", ":3:5: prices.\"m\" input is \"0.2\""},
      {"prices:\n  m: {input: 1}\n", ":2:6: prices.\"m\" output is missing"},
      {"prices:\n  m: {input: 1, output: 1, outptu: 2}\n",
       ":2:28: prices.\"m\" has unknown field \"outptu\""},
      {"price:\n  m: {input: 1, output: 1}\n", ": no top-level prices: key"},
      {"prices: [1, 2]\n", ":1:9: prices must be a map of model id"},
      {"prices:\n  m: {input: 1\n", "invalid YAML"},
  };
  int index = 0;
  for (const Case& c : cases) {
    std::string path = writeTemp("bad" + std::to_string(index++) + ".yaml", c.text);
    auto result = PriceTable::fromYamlFile(path);
    ASSERT_TRUE(std::holds_alternative<std::string>(result)) << c.text;
    const std::string& error = std::get<std::string>(result);
    EXPECT_EQ(error.rfind(path, 0), 0u) << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.text << "\n" << error;
    fs::remove(path);
  }
}

TEST(PriceTable, MissingYamlFileNamesPath) {
  std::string error = errorOf(json{{"prices_file", "no-such-prices.yaml"}}, "/nonexistent");
  EXPECT_NE(error.find("prices_file /nonexistent/no-such-prices.yaml cannot be read"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("relative to the config file's folder"), std::string::npos) << error;
}

}  // namespace
}  // namespace hfchain::plugins::budget
