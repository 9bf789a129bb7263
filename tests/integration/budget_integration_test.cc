// The budget link over loopback HTTP with the real engine, plugins and Llama 3 tokenizer.
// The behaviour cases C04 and C11 run from their files. Further tests cover clamp, truncate,
// fallback to a bigger window, per-key budgets under concurrency, budgets across an engine
// restart and audit totals.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <vector>

#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "hfchain/tokenizer.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using nlohmann::json;

const std::string kTokenizerDir = HFCHAIN_TOKENIZER_CACHE_DIR "/llama3";
const std::string kTokenizer = kTokenizerDir + "/tokenizer.json";

bool haveTokenizer() { return std::filesystem::exists(kTokenizer); }

#define REQUIRE_TOKENIZER()                                                             \
  if (!haveTokenizer()) {                                                               \
    GTEST_SKIP() << "tokenizer files missing in " << kTokenizerDir                      \
                 << "; run scripts/fetch-tokenizers.sh to fetch the Llama 3 tokenizer"; \
  }

const Tokenizer& llama3() {
  static TokenizerConstSharedPtr tokenizer = Tokenizer::load(kTokenizer).tokenizer;
  return *tokenizer;
}

json loadCase(const std::string& id) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/cases/" + id + ".json");
  std::stringstream text;
  text << file.rdbuf();
  return json::parse(text.str());
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// One TGI stream event; the last one carries the finish details.
std::string tgiEvent(int index, const std::string& text, int finish_tokens) {
  json event = {{"index", index},
                {"token", {{"id", index}, {"text", text}, {"logprob", -0.1}, {"special", false}}},
                {"generated_text", nullptr},
                {"details", nullptr}};
  if (finish_tokens > 0) {
    event["details"] = {{"finish_reason", "length"}, {"generated_tokens", finish_tokens}};
  }
  return "data:" + event.dump() + "\n\n";
}

// A TGI stream of `tokens`, served for every request.
json tgiStream(const std::vector<std::string>& tokens) {
  json chunks = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int last = i + 1 == tokens.size() ? static_cast<int>(tokens.size()) : 0;
    chunks.push_back({{"text", tgiEvent(static_cast<int>(i + 1), tokens[i], last)}});
  }
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", "close"},
          {"repeat", true}};
}

// An OpenAI chat stream of `pieces`, served for every request.
json openaiStream(const std::vector<std::string>& pieces) {
  json chunks = json::array();
  for (const std::string& piece : pieces) {
    json chunk = {
        {"choices", {{{"index", 0}, {"delta", {{"content", piece}}}, {"finish_reason", nullptr}}}}};
    chunks.push_back({{"text", "data: " + chunk.dump() + "\n\n"}});
  }
  json last = {{"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}}};
  chunks.push_back({{"text", "data: " + last.dump() + "\n\n"}});
  chunks.push_back({{"text", "data: [DONE]\n\n"}});
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", "close"},
          {"repeat", true}};
}

// Builds a request from a case step's body, renaming the OpenAI fields to the engine's.
Request caseRequest(const json& step_request) {
  Request request;
  request.target = step_request.value("target", "");
  const json& body = step_request["body"];
  request.stream = body.value("stream", true);
  if (body.contains("messages")) {
    for (const json& message : body["messages"]) {
      request.messages.push_back({message["role"], message["content"]});
    }
  }
  if (body.contains("inputs")) request.inputs = body["inputs"];
  if (body.contains("parameters")) request.parameters = body["parameters"];
  if (body.contains("max_tokens")) request.parameters["max_new_tokens"] = body["max_tokens"];
  if (body.contains("model")) request.model = body["model"];
  return request;
}

// The base URL of a case target: the loopback upstream of the same name with the path of
// the case's url (http://up/chat/v1 keeps /chat/v1).
std::string caseBaseUrl(const replay::ScriptedUpstreams& upstreams, const std::string& name,
                        const std::string& url) {
  std::string path;
  const size_t scheme = url.find("://");
  const size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash != std::string::npos) path = url.substr(slash);
  if (path.rfind("/" + name, 0) == 0) path = path.substr(name.size() + 1);
  return upstreams.find(name)->baseUrl() + path;
}

// Maps a case's chain_yaml onto the config schema. `api` and `url` become protocol and
// base_url, and `tokenizer: llama3` the cached tokenizer.json. Target keys that belong to
// the budget link go to its `targets` settings. `retry: {max_retries: N}` becomes
// max_attempts N + 1. The final `target` entry is the dispatcher that ends every chain.
std::string caseConfig(const std::string& chain_yaml, const replay::ScriptedUpstreams& upstreams) {
  YAML::Node source = YAML::Load(chain_yaml);
  YAML::Node config;
  json budget_targets = json::object();
  for (const auto& entry : source["targets"]) {
    const std::string name = entry.first.as<std::string>();
    const YAML::Node& target = entry.second;
    YAML::Node out;
    out["protocol"] = target["api"].as<std::string>();
    out["base_url"] = caseBaseUrl(upstreams, name, target["url"].as<std::string>());
    out["timeouts"]["connect_ms"] = 1000;
    out["timeouts"]["total_ms"] = 10000;
    if (target["context_window"]) out["context_window"] = target["context_window"].as<int64_t>();
    if (target["tokenizer"]) {
      out["tokenizer"] = std::string(HFCHAIN_TOKENIZER_CACHE_DIR) + "/" +
                         target["tokenizer"].as<std::string>() + "/tokenizer.json";
    }
    if (target["enforce_max_output_tokens"]) {
      budget_targets[name]["enforce_max_output_tokens"] =
          target["enforce_max_output_tokens"].as<bool>();
    }
    config["targets"][name] = out;
  }
  config["default_target"] = source["targets"].begin()->first.as<std::string>();
  for (const auto& entry : source["chain"]) {
    YAML::Node link;
    if (entry.IsScalar()) {
      if (entry.as<std::string>() == "target") continue;
      link["link"] = entry.as<std::string>();
      if (entry.as<std::string>() == "budget") {
        link["settings"] = YAML::Load(json{{"targets", budget_targets}}.dump());
      }
    } else {
      const std::string type = entry.begin()->first.as<std::string>();
      link["link"] = type;
      YAML::Node settings = entry.begin()->second;
      if (type == "retry" && settings["max_retries"]) {
        YAML::Node retry;
        retry["max_attempts"] = settings["max_retries"].as<int>() + 1;
        settings = retry;
      }
      link["settings"] = settings;
    }
    config["chain"].push_back(link);
  }
  YAML::Emitter emitter;
  emitter << config;
  return emitter.c_str();
}

class BudgetIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Metrics::global().clearForTest();
    dir_ = std::filesystem::temp_directory_path() /
           ("hfchain-budget-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    engine_.reset();
    if (upstreams_) upstreams_->stop();
    std::filesystem::remove_all(dir_);
  }

  void startUpstreams(const json& script) {
    auto upstreams = replay::ScriptedUpstreams::start(script);
    ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
    upstreams_ = std::move(upstreams.value());
  }

  std::unique_ptr<Engine> makeEngine(const std::string& yaml) {
    ParsedConfig parsed = parseConfig(yaml, (dir_ / "budget-integration.yaml").string());
    EXPECT_TRUE(parsed.ok()) << (parsed.issues.empty() ? "" : parsed.issues[0].describe()) << "\n"
                             << yaml;
    if (!parsed.ok()) return nullptr;
    parsed.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
    auto engine = Engine::create(parsed.config);
    EXPECT_TRUE(engine.ok()) << engine.error().message;
    if (!engine.ok()) return nullptr;
    return std::move(engine.value());
  }

  // A target block for upstream `name`.
  std::string target(const std::string& name, const std::string& protocol, int64_t window,
                     bool tokenizer = true) {
    std::string out = "  " + name + ":\n    protocol: " + protocol +
                      "\n    base_url: " + upstreams_->find(name)->baseUrl() +
                      (protocol == "openai" ? "/v1" : "") +
                      "\n    timeouts: {connect_ms: 1000, total_ms: 10000}\n";
    if (window > 0) out += "    context_window: " + std::to_string(window) + "\n";
    if (tokenizer) out += "    tokenizer: " + kTokenizer + "\n";
    return out;
  }

  json receivedBody(const std::string& name, size_t index = 0) {
    std::vector<replay::ReceivedRequest> requests = upstreams_->find(name)->requests();
    if (index >= requests.size()) return json();
    return json::parse(requests[index].body, nullptr, false);
  }

  std::filesystem::path dir_;
  std::unique_ptr<replay::ScriptedUpstreams> upstreams_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(BudgetIntegrationTest, CaseC04OverWindowRejectedBeforeSending) {
  const json c04 = loadCase("C04");
  startUpstreams(c04["upstream_script"]);
  engine_ = makeEngine(caseConfig(c04["chain_yaml"], *upstreams_));
  ASSERT_TRUE(engine_);
  const json& expect = c04["expect"];
  for (const json& step : c04["steps"]) {
    const std::string name = step["request"]["name"];
    SCOPED_TRACE(name);
    const json& expected = expect[name];
    auto started = std::chrono::steady_clock::now();
    Generation result = engine_->generate(caseRequest(step["request"]));
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count();
    ASSERT_EQ(expected["outcome"], "error");
    EXPECT_EQ(errorClassName(result.error.cls), expected["error"]["class"].get<std::string>())
        << result.error.describe();
    for (const json& part : expected["error"]["message_contains"]) {
      EXPECT_NE(result.error.message.find(part.get<std::string>()), std::string::npos)
          << result.error.message;
    }
    if (expected.contains("partial_tokens")) {
      std::string partial;
      for (const json& token : expected["partial_tokens"]) partial += token.get<std::string>();
      EXPECT_EQ(result.text, partial);
    }
    for (const auto& [upstream, count] : expected["upstream_requests"].items()) {
      EXPECT_EQ(upstreams_->find(upstream)->requestCount(), count.get<size_t>()) << upstream;
    }
    if (expected.contains("max_latency_ms")) {
      EXPECT_LE(elapsed_ms, expected["max_latency_ms"].get<int64_t>());
    }
  }
  const Generation& rejected_r1 = engine_->generate(caseRequest(c04["steps"][0]["request"]));
  EXPECT_EQ(rejected_r1.error.http_status, 400);
}

TEST_F(BudgetIntegrationTest, CaseC11OutputCutIsCleanPrefix) {
  REQUIRE_TOKENIZER();
  const json c11 = loadCase("C11");
  startUpstreams(c11["upstream_script"]);
  engine_ = makeEngine(caseConfig(c11["chain_yaml"], *upstreams_));
  ASSERT_TRUE(engine_);
  const json& expect = c11["expect"];

  // r1: the empty-text token event is a token, not the end of the stream.
  const json& r1 = c11["steps"][0]["request"];
  Generation first = engine_->generate(caseRequest(r1));
  ASSERT_TRUE(first.ok()) << first.error.describe();
  EXPECT_EQ(first.text, expect["r1"]["text"].get<std::string>());
  EXPECT_EQ(first.finish_reason, expect["r1"]["finish_reason"].get<std::string>());
  EXPECT_EQ(first.usage.completion_tokens, expect["r1"]["generated_tokens"].get<int64_t>());

  const json& step = c11["steps"][1];
  const json& each = expect["r2"]["for_each_sweep_value"];
  const std::string full = each["text_is_prefix_of"];
  for (const json& value : step["sweep"]["values"]) {
    const int64_t limit = value.get<int64_t>();
    SCOPED_TRACE("max_tokens " + std::to_string(limit));
    json request = step["request"];
    request["body"][step["sweep"]["param"].get<std::string>()] = limit;
    Response response = engine_->stream(caseRequest(request));
    ASSERT_TRUE(response.ok()) << response.error.describe();
    const std::string* header = response.headers.find("x-hfchain-output-limit");
    ASSERT_NE(header, nullptr);
    EXPECT_EQ(*header, std::to_string(limit));
    Generation result = collect(std::move(response));
    ASSERT_TRUE(result.ok()) << result.error.describe();
    EXPECT_EQ(result.finish_reason, each["finish_reason"].get<std::string>());
    EXPECT_EQ(full.compare(0, result.text.size(), result.text), 0) << result.text;
    EXPECT_LT(result.text.size(), full.size());
    EXPECT_TRUE(Tokenizer::isValidUtf8(result.text)) << result.text;
    EXPECT_EQ(result.text.find("\xEF\xBF\xBD"), std::string::npos) << result.text;
    EXPECT_LE(static_cast<int64_t>(llama3().count(result.text, false)), limit) << result.text;
    EXPECT_EQ(result.usage.completion_tokens,
              static_cast<int64_t>(llama3().count(result.text, false)));
  }
  EXPECT_EQ(Metrics::global().value("hfchain_budget_output_cutoffs_total", "target=\"chat\""), 12);
}

TEST_F(BudgetIntegrationTest, ClampLowersMaxNewTokens) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"small", {tgiStream({"a", "b"})}}});
  engine_ = makeEngine("targets:\n" + target("small", "tgi", 64) +
                       "chain:\n  - link: budget\n    settings: {on_context_overflow: clamp, "
                       "min_new_tokens: 8}\n");
  ASSERT_TRUE(engine_);
  Request request;
  request.inputs = "The quick brown fox jumps over the lazy dog.";
  request.parameters["max_new_tokens"] = 500;
  const int64_t input = static_cast<int64_t>(llama3().count(request.inputs, true));
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  json body = receivedBody("small");
  EXPECT_EQ(body["parameters"]["max_new_tokens"], 64 - input) << body.dump();

  // Fewer than min_new_tokens left: rejected, nothing sent.
  request.inputs = std::string(300, 'x') + " " + std::string(300, 'y');
  Generation rejected = engine_->generate(request);
  EXPECT_EQ(rejected.error.cls, ErrorClass::kBudgetExceeded) << rejected.error.describe();
  EXPECT_NE(rejected.error.message.find("min_new_tokens 8"), std::string::npos)
      << rejected.error.message;
  EXPECT_EQ(upstreams_->find("small")->requestCount(), 1u);
}

TEST_F(BudgetIntegrationTest, TruncateDropsOldestTurns) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"chat", {openaiStream({"fine"})}}});
  // 150 input tokens fit; each long message alone is more than that.
  engine_ = makeEngine("targets:\n" + target("chat", "openai", 200) +
                       "chain:\n  - link: budget\n    settings: {on_context_overflow: truncate}\n");
  ASSERT_TRUE(engine_);
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "word" + std::to_string(i) + " ";
  Request request;
  request.messages = {{"system", "You are terse."},
                      {"user", "First question: " + long_text},
                      {"assistant", "First answer: " + long_text},
                      {"user", "Second question?"},
                      {"assistant", "Second answer."},
                      {"user", "Third question?"}};
  request.parameters["max_new_tokens"] = 50;

  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  json body = receivedBody("chat");
  ASSERT_TRUE(body.contains("messages")) << body.dump();
  std::vector<std::string> received;
  for (const json& message : body["messages"]) {
    received.push_back(message["role"].get<std::string>() + ": " +
                       message["content"].get<std::string>());
  }
  std::vector<std::string> expected = {"system: You are terse.", "user: Second question?",
                                       "assistant: Second answer.", "user: Third question?"};
  EXPECT_EQ(received, expected);
  EXPECT_EQ(Metrics::global().value("hfchain_budget_truncated_messages_total", "target=\"chat\""),
            2);
}

TEST_F(BudgetIntegrationTest, TruncateCutsLastUserMessageAtSentence) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"chat", {openaiStream({"fine"})}}});
  engine_ = makeEngine("targets:\n" + target("chat", "openai", 120) +
                       "chain:\n  - link: budget\n    settings: {on_context_overflow: truncate}\n");
  ASSERT_TRUE(engine_);
  std::string text;
  for (int i = 0; i < 40; ++i) text += "Sentence number " + std::to_string(i) + " is here. ";
  text += "What is the last sentence?";
  Request request;
  request.messages = {{"system", "Answer briefly."}, {"user", text}};
  request.parameters["max_new_tokens"] = 20;
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  json body = receivedBody("chat");
  ASSERT_EQ(body["messages"].size(), 2u) << body.dump();
  EXPECT_EQ(body["messages"][0]["content"], "Answer briefly.");
  const std::string kept = body["messages"][1]["content"];
  ASSERT_LT(kept.size(), text.size());
  EXPECT_EQ(text.compare(text.size() - kept.size(), kept.size(), kept), 0) << kept;
  EXPECT_EQ(kept.rfind("Sentence number ", 0), 0u) << kept;
  EXPECT_NE(kept.find("What is the last sentence?"), std::string::npos);
}

TEST_F(BudgetIntegrationTest, FallbackReroutesToBiggerWindow) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"small", {tgiStream({"small"})}}, {"big", {tgiStream({"big"})}}});
  engine_ =
      makeEngine("targets:\n" + target("small", "tgi", 32) + target("big", "tgi", 8192) +
                 "default_target: small\n"
                 "chain:\n"
                 "  - link: fallback\n"
                 "    settings:\n"
                 "      tiers:\n"
                 "        - {name: small, targets: [small], on: {class: [context_overflow]}}\n"
                 "        - {name: big, targets: [big]}\n"
                 "  - link: budget\n"
                 "    settings: {on_context_overflow: fallback}\n");
  ASSERT_TRUE(engine_);
  Request request;
  for (int i = 0; i < 20; ++i) request.inputs += "several words of context ";
  request.parameters["max_new_tokens"] = 16;
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "big");
  EXPECT_EQ(upstreams_->find("small")->requestCount(), 0u);
  EXPECT_EQ(upstreams_->find("big")->requestCount(), 1u);

  // A short prompt fits the small window and stays there.
  request.inputs = "hi";
  Generation small = engine_->generate(request);
  EXPECT_EQ(small.text, "small") << small.error.describe();
}

// The config of the budget tests: one TGI target that streams five tokens and reports them.
std::string budgetConfig(const std::string& base_url, const std::string& budget_settings) {
  return "targets:\n  up:\n    protocol: tgi\n    base_url: " + base_url +
         "\n    tokenizer: " + kTokenizer +
         "\n    timeouts: {connect_ms: 1000, total_ms: 10000}\n"
         "chain:\n  - link: budget\n    settings: " +
         budget_settings + "\n";
}

Request keyedRequest(const std::string& key) {
  Request request;
  request.inputs = "Count to five.";
  request.parameters["max_new_tokens"] = 5;
  request.metadata.set("key", key);
  return request;
}

// Input tokens of keyedRequest plus its five output tokens.
int64_t keyedCost() { return static_cast<int64_t>(llama3().count("Count to five.", true)) + 5; }

TEST_F(BudgetIntegrationTest, PerKeyBudgetHoldsUnderConcurrency) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"up", {tgiStream({"1", "2", "3", "4", "5"})}}});
  const int64_t cost = keyedCost();
  const int64_t limit = 10 * cost + cost / 2;
  engine_ = makeEngine(budgetConfig(
      upstreams_->find("up")->baseUrl(),
      "{budgets: [{name: per-key, scope: key, limit_tokens: " + std::to_string(limit) + "}]}"));
  ASSERT_TRUE(engine_);

  std::atomic<int> ok_alice{0}, ok_bob{0}, rejected{0}, bad_retry_after{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = t % 2 == 0 ? "sk-alice-secret-0001" : "sk-bob-secret-0002";
      for (int i = 0; i < 5; ++i) {
        Generation result = engine_->generate(keyedRequest(key));
        if (result.ok()) {
          (t % 2 == 0 ? ok_alice : ok_bob)++;
        } else if (result.error.cls == ErrorClass::kBudgetExceeded &&
                   result.error.http_status == 429) {
          rejected++;
          if (result.error.retry_after_ms <= 0) bad_retry_after++;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  // Every reservation equals the settled use, so each key gets exactly limit / cost calls.
  EXPECT_EQ(ok_alice.load(), 10);
  EXPECT_EQ(ok_bob.load(), 10);
  EXPECT_EQ(rejected.load(), 20);
  EXPECT_EQ(bad_retry_after.load(), 0);
  EXPECT_EQ(upstreams_->find("up")->requestCount(), 20u);
  EXPECT_LE(ok_alice.load() * cost, limit + cost);
  EXPECT_EQ(
      Metrics::global().value("hfchain_budget_rejected_total", "reason=\"budget\",target=\"up\""),
      20);
}

TEST_F(BudgetIntegrationTest, BudgetSurvivesEngineRestart) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"up", {tgiStream({"1", "2", "3", "4", "5"})}}});
  const int64_t cost = keyedCost();
  const std::string state = (dir_ / "budget-state.json").string();
  const std::string config = budgetConfig(
      upstreams_->find("up")->baseUrl(),
      "{state_file: " + state + ", budgets: [{name: daily, scope: key, limit_tokens: " +
          std::to_string(3 * cost) + "}]}");
  engine_ = makeEngine(config);
  ASSERT_TRUE(engine_);
  for (int i = 0; i < 2; ++i) {
    Generation result = engine_->generate(keyedRequest("sk-carol-secret-0003"));
    ASSERT_TRUE(result.ok()) << result.error.describe();
  }
  engine_.reset();
  ASSERT_TRUE(std::filesystem::exists(state));
  EXPECT_EQ(readFile(state).find("sk-carol"), std::string::npos);

  engine_ = makeEngine(config);
  ASSERT_TRUE(engine_);
  Generation third = engine_->generate(keyedRequest("sk-carol-secret-0003"));
  EXPECT_TRUE(third.ok()) << third.error.describe();
  Generation fourth = engine_->generate(keyedRequest("sk-carol-secret-0003"));
  EXPECT_EQ(fourth.error.cls, ErrorClass::kBudgetExceeded);
  EXPECT_EQ(fourth.error.http_status, 429);
  EXPECT_NE(fourth.error.message.find("daily"), std::string::npos) << fourth.error.message;
  EXPECT_EQ(fourth.error.message.find("sk-carol"), std::string::npos) << fourth.error.message;
  EXPECT_EQ(upstreams_->find("up")->requestCount(), 3u);
}

// A reload builds new link instances while the old ones may still settle. Both must use one
// ledger, or the new one starts from a state file that lags behind and lets callers overspend.
TEST_F(BudgetIntegrationTest, BudgetSurvivesConfigReload) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"up", {tgiStream({"1", "2", "3", "4", "5"})}}});
  const int64_t cost = keyedCost();
  const std::string state = (dir_ / "budget-state.json").string();
  auto configWithLimit = [&](int64_t requests) {
    return budgetConfig(upstreams_->find("up")->baseUrl(),
                        "{state_file: " + state + ", budgets: [{name: daily, scope: key, " +
                            "limit_tokens: " + std::to_string(requests * cost) + "}]}");
  };
  engine_ = makeEngine(configWithLimit(3));
  ASSERT_TRUE(engine_);
  for (int i = 0; i < 2; ++i) {
    Generation result = engine_->generate(keyedRequest("sk-dave-secret-0004"));
    ASSERT_TRUE(result.ok()) << result.error.describe();
  }

  ParsedConfig same = parseConfig(configWithLimit(3), (dir_ / "budget-integration.yaml").string());
  ASSERT_TRUE(same.ok());
  same.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
  ASSERT_TRUE(engine_->reload(same.config).ok());
  EXPECT_TRUE(engine_->generate(keyedRequest("sk-dave-secret-0004")).ok());
  EXPECT_EQ(engine_->generate(keyedRequest("sk-dave-secret-0004")).error.cls,
            ErrorClass::kBudgetExceeded);

  // New rules: the running ledger hands the file over, and the larger limit applies to the
  // use counted so far.
  ParsedConfig larger =
      parseConfig(configWithLimit(4), (dir_ / "budget-integration.yaml").string());
  ASSERT_TRUE(larger.ok());
  larger.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
  ASSERT_TRUE(engine_->reload(larger.config).ok());
  EXPECT_TRUE(engine_->generate(keyedRequest("sk-dave-secret-0004")).ok());
  EXPECT_EQ(engine_->generate(keyedRequest("sk-dave-secret-0004")).error.cls,
            ErrorClass::kBudgetExceeded);
  EXPECT_EQ(upstreams_->find("up")->requestCount(), 4u);

  // After the last engine is gone, the file holds all four requests.
  engine_.reset();
  engine_ = makeEngine(configWithLimit(4));
  ASSERT_TRUE(engine_);
  EXPECT_EQ(engine_->generate(keyedRequest("sk-dave-secret-0004")).error.cls,
            ErrorClass::kBudgetExceeded);
}

TEST_F(BudgetIntegrationTest, AuditTotalsMatchRequests) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"up", {tgiStream({"1", "2", "3", "4", "5"})}}});
  const int64_t cost = keyedCost();
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ = makeEngine(budgetConfig(
      upstreams_->find("up")->baseUrl(),
      "{audit_file: " + audit.string() + ", prices: {\"*\": {input: 1.0, output: 2.0}}, " +
          "budgets: [{name: per-key, scope: key, limit_tokens: " + std::to_string(4 * cost) +
          "}]}"));
  ASSERT_TRUE(engine_);
  int succeeded = 0;
  for (int i = 0; i < 5; ++i) {
    if (engine_->generate(keyedRequest("sk-dave-secret-0004")).ok()) ++succeeded;
  }
  EXPECT_EQ(succeeded, 4);
  engine_.reset();

  const std::string text = readFile(audit);
  EXPECT_EQ(text.find("sk-dave"), std::string::npos);
  std::istringstream lines(text);
  std::string line;
  int records = 0, ok = 0, rejected = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  const int64_t input = cost - 5;
  while (std::getline(lines, line)) {
    json record = json::parse(line);
    ++records;
    if (record["outcome"] == "ok") {
      ++ok;
      output_tokens += record["output_tokens"].get<int64_t>();
      EXPECT_EQ(record["input_tokens_estimated"], input);
      EXPECT_EQ(record["input_count_method"], "tokenizer");
    }
    if (record["outcome"] == "rejected_budget") ++rejected;
    if (record["cost_usd"].is_number()) cost_usd += record["cost_usd"].get<double>();
    EXPECT_EQ(record["target"], "up");
    EXPECT_FALSE(record["key"].get<std::string>().empty());
  }
  EXPECT_EQ(records, 5);
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(rejected, 1);
  EXPECT_EQ(output_tokens, 20);
  EXPECT_NEAR(cost_usd, 4 * (input * 1.0 + 5 * 2.0) / 1e6, 1e-12);
}

// Returns the audit records of `path`, one JSON object per line.
std::vector<json> auditRecords(const std::filesystem::path& path) {
  std::vector<json> records;
  std::istringstream lines(readFile(path));
  std::string line;
  while (std::getline(lines, line)) records.push_back(json::parse(line));
  return records;
}

// A TGI /generate response of `tokens` space-separated words, as one JSON body.
json tgiGenerateBody(int tokens) {
  std::string text;
  for (int i = 0; i < tokens; ++i) text += " word" + std::to_string(i);
  json body = {{"generated_text", text},
               {"details", {{"finish_reason", "length"}, {"generated_tokens", tokens}}}};
  return {{"status", 200},
          {"headers", {{"content-type", "application/json"}}},
          {"chunks", {{{"text", body.dump()}}}},
          {"end", "close"},
          {"repeat", true}};
}

TEST_F(BudgetIntegrationTest, InvalidMaxNewTokensRejected) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"up", {tgiStream({"1"})}}});
  engine_ = makeEngine(budgetConfig(upstreams_->find("up")->baseUrl(), "{}"));
  ASSERT_TRUE(engine_);
  const std::vector<std::pair<std::string, json>> cases = {{"max_new_tokens", 0},
                                                           {"max_new_tokens", -5},
                                                           {"max_new_tokens", 2.5},
                                                           {"max_new_tokens", "8"},
                                                           {"max_new_tokens", json::array()},
                                                           {"max_tokens", 0},
                                                           {"max_tokens", -1},
                                                           {"max_tokens", 1.5}};
  for (const auto& [name, value] : cases) {
    SCOPED_TRACE(name + " " + value.dump());
    Request request;
    request.inputs = "Count to five.";
    request.parameters[name] = value;
    Generation result = engine_->generate(request);
    EXPECT_EQ(result.error.cls, ErrorClass::kInvalidRequest) << result.error.describe();
    EXPECT_EQ(result.error.http_status, 400);
    EXPECT_NE(
        result.error.message.find(name + " must be an integer of at least 1, got " + value.dump()),
        std::string::npos)
        << result.error.message;
  }
  EXPECT_EQ(upstreams_->find("up")->requestCount(), 0u);
}

TEST_F(BudgetIntegrationTest, Int64MaxNewTokensIsCheckedWithoutOverflow) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"small", {tgiStream({"a"})}}, {"open", {tgiStream({"a"})}}});
  const std::string huge = "9223372036854775807";
  engine_ = makeEngine("targets:\n" + target("small", "tgi", 64) + target("open", "tgi", 0) +
                       "default_target: small\n"
                       "chain:\n  - link: budget\n    settings:\n"
                       "      on_context_overflow: reject\n"
                       "      targets: {open: {on_context_overflow: clamp}}\n"
                       "      budgets: [{name: all, scope: global, limit_tokens: 1000}]\n");
  ASSERT_TRUE(engine_);
  Request request;
  request.inputs = "The quick brown fox jumps over the lazy dog.";
  request.parameters["max_new_tokens"] = json::parse(huge);

  // reject: the window check does not wrap.
  Generation rejected = engine_->generate(request);
  EXPECT_EQ(rejected.error.cls, ErrorClass::kBudgetExceeded) << rejected.error.describe();
  EXPECT_EQ(rejected.error.http_status, 400);
  EXPECT_NE(rejected.error.message.find("max_new_tokens " + huge), std::string::npos)
      << rejected.error.message;
  EXPECT_EQ(upstreams_->find("small")->requestCount(), 0u);

  // An unknown window leaves max_new_tokens unchecked, and the reservation must not wrap.
  request.target = "open";
  Generation over_budget = engine_->generate(request);
  EXPECT_EQ(over_budget.error.cls, ErrorClass::kBudgetExceeded) << over_budget.error.describe();
  EXPECT_EQ(over_budget.error.http_status, 429);
  EXPECT_EQ(upstreams_->find("open")->requestCount(), 0u);

  // A value above INT64_MAX is read as INT64_MAX, not as a negative number.
  request.parameters["max_new_tokens"] = json::parse("18446744073709551615");
  EXPECT_EQ(engine_->generate(request).error.http_status, 429);
  EXPECT_EQ(upstreams_->find("open")->requestCount(), 0u);
}

TEST_F(BudgetIntegrationTest, Int64MaxNewTokensIsClamped) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"small", {tgiStream({"a"})}}});
  engine_ = makeEngine("targets:\n" + target("small", "tgi", 64) +
                       "chain:\n  - link: budget\n    settings: {on_context_overflow: clamp, "
                       "budgets: [{name: all, scope: global, limit_tokens: 1000}]}\n");
  ASSERT_TRUE(engine_);
  Request request;
  request.inputs = "The quick brown fox jumps over the lazy dog.";
  request.parameters["max_new_tokens"] = std::numeric_limits<int64_t>::max();
  const int64_t input = static_cast<int64_t>(llama3().count(request.inputs, true));
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  json body = receivedBody("small");
  EXPECT_EQ(body["parameters"]["max_new_tokens"], 64 - input) << body.dump();
}

TEST_F(BudgetIntegrationTest, NonStreamGenerateCutAtOutputLimit) {
  REQUIRE_TOKENIZER();
  // The upstream ignores max_new_tokens and returns 100 words in one /generate body.
  startUpstreams({{"up", {tgiGenerateBody(100)}}});
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ =
      makeEngine(budgetConfig(upstreams_->find("up")->baseUrl(),
                              "{enforce_max_output_tokens: true, audit_file: " + audit.string() +
                                  ", budgets: [{name: all, scope: global, limit_tokens: "
                                  "100000}]}"));
  ASSERT_TRUE(engine_);
  Request request;
  request.inputs = "Count to five.";
  request.parameters["max_new_tokens"] = 5;
  request.stream = false;
  const int64_t input = static_cast<int64_t>(llama3().count(request.inputs, true));

  Response response = engine_->stream(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  const std::string* header = response.headers.find("x-hfchain-output-limit");
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(*header, "5");
  Generation result = collect(std::move(response));
  ASSERT_TRUE(result.ok()) << result.error.describe();
  ASSERT_EQ(upstreams_->find("up")->requestCount(), 1u);
  EXPECT_EQ(upstreams_->find("up")->requests()[0].path, "/generate");
  EXPECT_EQ(result.finish_reason, "length");
  const int64_t delivered = static_cast<int64_t>(llama3().count(result.text, false));
  EXPECT_LE(delivered, 5) << result.text;
  EXPECT_GE(delivered, 4) << result.text;
  EXPECT_EQ(result.text.rfind(" word0", 0), 0u) << result.text;
  EXPECT_EQ(result.usage.completion_tokens, delivered);
  EXPECT_EQ(Metrics::global().value("hfchain_budget_used_tokens",
                                    "budget=\"all\",scope=\"global\",value=\"\""),
            static_cast<double>(input + delivered));
  engine_.reset();

  std::vector<json> records = auditRecords(audit);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["outcome"], "length_cut");
}

const std::string kGemma3Dir = HFCHAIN_TOKENIZER_CACHE_DIR "/gemma3";

#define REQUIRE_GEMMA3()                                                                \
  if (!std::filesystem::exists(kGemma3Dir + "/tokenizer.json") ||                       \
      !std::filesystem::exists(kGemma3Dir + "/tokenizer_config.json")) {                \
    GTEST_SKIP() << "tokenizer files missing in " << kGemma3Dir                         \
                 << "; run scripts/fetch-tokenizers.sh to fetch the Gemma 3 tokenizer"; \
  }

// A config with one OpenAI target "chat" counted with the Gemma 3 tokenizer and template.
std::string gemmaConfig(const std::string& base_url, int64_t window, const std::string& audit) {
  return "targets:\n  chat:\n    protocol: openai\n    base_url: " + base_url +
         "/v1\n    context_window: " + std::to_string(window) + "\n    tokenizer: " + kGemma3Dir +
         "/tokenizer.json\n    timeouts: {connect_ms: 1000, total_ms: 10000}\n"
         "chain:\n  - link: budget\n    settings: {on_context_overflow: truncate, audit_file: " +
         audit + "}\n";
}

TEST_F(BudgetIntegrationTest, TruncateGemmaKeepsRolesAlternating) {
  REQUIRE_GEMMA3();
  startUpstreams({{"chat", {openaiStream({"fine"})}}});
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ = makeEngine(gemmaConfig(upstreams_->find("chat")->baseUrl(), 300, audit.string()));
  ASSERT_TRUE(engine_);
  Request request;
  request.messages.push_back({"system", "You are terse."});
  for (int i = 0; i < 12; ++i) {
    request.messages.push_back(
        {"user", "Question " + std::to_string(i) + ": what is " + std::to_string(i) + " + 1?"});
    request.messages.push_back({"assistant", "It is " + std::to_string(i + 1) + ", as " +
                                                 std::to_string(i) +
                                                 " + 1 = " + std::to_string(i + 1) + "."});
  }
  request.messages.push_back({"user", "And what is 12 + 1?"});
  // Room for the input varies with max_new_tokens, so several limits meet odd and even
  // message boundaries.
  for (int max_new : {50, 61, 75, 90, 110, 130}) {
    SCOPED_TRACE("max_new_tokens " + std::to_string(max_new));
    request.parameters["max_new_tokens"] = max_new;
    const size_t index = upstreams_->find("chat")->requestCount();
    Generation result = engine_->generate(request);
    ASSERT_TRUE(result.ok()) << result.error.describe();
    json body = receivedBody("chat", index);
    ASSERT_TRUE(body.contains("messages")) << body.dump();
    const json& messages = body["messages"];
    ASSERT_GE(messages.size(), 2u);
    ASSERT_LT(messages.size(), request.messages.size());
    EXPECT_EQ(messages[0]["role"], "system");
    for (size_t i = 1; i < messages.size(); ++i) {
      EXPECT_EQ(messages[i]["role"], i % 2 == 1 ? "user" : "assistant") << body.dump();
    }
    EXPECT_EQ(messages.back()["content"], "And what is 12 + 1?");
  }
  engine_.reset();
  for (const json& record : auditRecords(audit)) {
    EXPECT_EQ(record["input_count_method"], "tokenizer") << record.dump();
    EXPECT_EQ(record["input_count_note"], "") << record.dump();
  }
}

TEST_F(BudgetIntegrationTest, TruncatedRecordCarriesFinalCountMethod) {
  REQUIRE_GEMMA3();
  startUpstreams({{"chat", {openaiStream({"fine"})}}});
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ = makeEngine(gemmaConfig(upstreams_->find("chat")->baseUrl(), 120, audit.string()));
  ASSERT_TRUE(engine_);
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "word" + std::to_string(i) + " ";
  Request request;
  // Two user messages in a row: Gemma's template raises, so the first count is an estimate.
  // Dropping the oldest turn makes the chat alternate, and the template renders it.
  request.messages = {{"system", "You are terse."},
                      {"user", "First: " + long_text},
                      {"user", "Second question?"},
                      {"assistant", "Second answer."},
                      {"user", "Third question?"}};
  request.parameters["max_new_tokens"] = 40;
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  ASSERT_EQ(receivedBody("chat")["messages"].size(), 4u) << receivedBody("chat").dump();
  engine_.reset();
  std::vector<json> records = auditRecords(audit);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["input_count_method"], "tokenizer") << records[0].dump();
  EXPECT_EQ(records[0]["input_count_note"], "") << records[0].dump();
}

TEST_F(BudgetIntegrationTest, AuditNoteIsCapped) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"chat", {openaiStream({"fine"})}}});
  // A chat template whose error message quotes the message content.
  const std::filesystem::path config = dir_ / "tokenizer_config.json";
  {
    std::ofstream file(config);
    file << json{{"chat_template",
                  "{{ raise_exception('cannot render: ' + messages[0]['content']) }}"}}
                .dump();
  }
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ = makeEngine("targets:\n  chat:\n    protocol: openai\n    base_url: " +
                       upstreams_->find("chat")->baseUrl() + "/v1\n    tokenizer: " + kTokenizer +
                       "\n    chat_template: " + config.string() +
                       "\n    timeouts: {connect_ms: 1000, total_ms: 10000}\n"
                       "chain:\n  - link: budget\n    settings: {audit_file: " +
                       audit.string() + "}\n");
  ASSERT_TRUE(engine_);
  std::string secret_tail = "PRIVATE-END-OF-PROMPT";
  std::string content;
  for (int i = 0; i < 60; ++i) content += "caf\xC3\xA9 ";
  content += secret_tail;
  Request request;
  request.messages = {{"user", content}};
  request.parameters["max_new_tokens"] = 5;
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  engine_.reset();
  std::vector<json> records = auditRecords(audit);
  ASSERT_EQ(records.size(), 1u);
  const std::string note = records[0]["input_count_note"];
  EXPECT_EQ(records[0]["input_count_method"], "estimate");
  EXPECT_NE(note.find("cannot render"), std::string::npos) << note;
  EXPECT_LE(note.size(), 203u) << note;
  EXPECT_EQ(note.substr(note.size() - 3), "\xE2\x80\xA6") << note;
  EXPECT_EQ(note.find(secret_tail), std::string::npos) << note;
  EXPECT_TRUE(Tokenizer::isValidUtf8(note)) << note;
}

TEST_F(BudgetIntegrationTest, FallbackWritesReroutedRecord) {
  REQUIRE_TOKENIZER();
  startUpstreams({{"small", {tgiStream({"small"})}}, {"big", {tgiStream({"big"})}}});
  const std::filesystem::path audit = dir_ / "audit.jsonl";
  engine_ =
      makeEngine("targets:\n" + target("small", "tgi", 32) + target("big", "tgi", 8192) +
                 "default_target: small\n"
                 "chain:\n"
                 "  - link: fallback\n"
                 "    settings:\n"
                 "      tiers:\n"
                 "        - {name: small, targets: [small], on: {class: [context_overflow]}}\n"
                 "        - {name: big, targets: [big]}\n"
                 "  - link: budget\n"
                 "    settings: {on_context_overflow: fallback, audit_file: " +
                 audit.string() + "}\n");
  ASSERT_TRUE(engine_);
  Request request;
  for (int i = 0; i < 20; ++i) request.inputs += "several words of context ";
  request.parameters["max_new_tokens"] = 16;
  Generation result = engine_->generate(request);
  ASSERT_TRUE(result.ok()) << result.error.describe();
  EXPECT_EQ(result.text, "big");
  engine_.reset();

  std::vector<json> records = auditRecords(audit);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["outcome"], "rerouted");
  EXPECT_EQ(records[0]["target"], "small");
  EXPECT_EQ(records[1]["outcome"], "ok");
  EXPECT_EQ(records[1]["target"], "big");
  EXPECT_EQ(records[0]["request_id"], records[1]["request_id"]);
}

}  // namespace
}  // namespace hfchain
