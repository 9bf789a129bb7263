// The cost of the budget link on a request whose prompt is about 1,000 Llama 3 tokens. The
// run measures the chain without links as the baseline, then the budget link and its token
// counting alone, once with the estimate and once with the real tokenizer and chat template.
// The link's own cost is BudgetEstimate - CountEstimate - Baseline. The same difference of
// the tokenizer rows is less exact, because the tokenizer's variance hides a few microseconds.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hfchain/engine.h"
#include "hfchain/token_counter.h"
#include "hfchain/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using hfchain::ChainSnapshot;
using hfchain::ChainSnapshotPtr;

const fs::path kTokenizer =
    fs::path(HFCHAIN_TEST_DATA_DIR) / "tokenizers/cache/llama3/tokenizer.json";
constexpr int kPromptVariants = 16;

// Prompts of about 1,000 tokens cut from the corpus at different offsets, so that the
// tokenizer's word cache does not see one text only.
const std::vector<std::string>& prompts() {
  static const std::vector<std::string> texts = [] {
    std::ifstream file(fs::path(HFCHAIN_TEST_DATA_DIR) / "corpus-sample.txt", std::ios::binary);
    std::stringstream content;
    content << file.rdbuf();
    const std::string corpus = content.str();
    std::vector<std::string> out;
    // 4,500 bytes of the mostly English first half of the corpus are about 1,000 tokens.
    for (int i = 0; i < kPromptVariants; ++i)
      out.push_back(corpus.substr(static_cast<size_t>(i) * 1500, 4500));
    return out;
  }();
  return texts;
}

std::string targetYaml(bool tokenizer) {
  std::string yaml =
      "targets:\n  t:\n    protocol: openai\n    base_url: http://127.0.0.1:9\n"
      "    context_window: 8192\n";
  if (tokenizer) yaml += "    tokenizer: " + kTokenizer.string() + "\n";
  return yaml;
}

constexpr const char* kBudgetChain =
    "chain:\n"
    "  - link: budget\n"
    "    plugin: " HFCHAIN_PLUGIN_DIR
    "/libhfchain_link_budget.so\n"
    "    settings:\n"
    "      on_context_overflow: reject\n"
    "      budgets:\n"
    "        - {name: per-key, scope: key, limit_tokens: 1000000000000, window_seconds: 86400}\n";

ChainSnapshotPtr buildChain(const std::string& yaml, hfchain::PluginRegistry& registry) {
  hfchain::ParsedConfig parsed = hfchain::parseConfig(yaml, "bench.yaml");
  if (!parsed.ok()) {
    std::fprintf(stderr, "budget_bench: %s\n", hfchain::configError(parsed.issues).message.c_str());
    std::abort();
  }
  auto terminal = [](hfchain::Request&) { return hfchain::makeTextResponse("ok"); };
  auto snapshot = ChainSnapshot::build(parsed.config, registry, terminal);
  if (!snapshot.ok()) {
    std::fprintf(stderr, "budget_bench: %s\n", snapshot.error().message.c_str());
    std::abort();
  }
  return *snapshot;
}

hfchain::Request requestFor(int64_t iteration) {
  hfchain::Request request;
  request.id = "bench";
  request.target = "t";
  request.metadata.set("key_id", "key-0123456789abcdef");
  request.parameters["max_new_tokens"] = 256;
  request.messages = {{"system", "You are a helpful assistant."},
                      {"user", prompts()[static_cast<size_t>(iteration % kPromptVariants)]}};
  return request;
}

void sendAll(benchmark::State& state, const ChainSnapshotPtr& snapshot) {
  hfchain::Event event;
  int64_t iteration = 0;
  for (auto _ : state) {
    hfchain::Request request = requestFor(iteration++);
    hfchain::Response response = snapshot->send(request);
    while (response.stream->next(event)) {
    }
    benchmark::DoNotOptimize(event);
  }
}

bool skipWithoutTokenizer(benchmark::State& state) {
  if (fs::exists(kTokenizer)) return false;
  state.SkipWithError("tokenizer files missing; run scripts/fetch-tokenizers.sh first");
  return true;
}

void BM_Baseline(benchmark::State& state) {
  hfchain::PluginRegistry registry;
  sendAll(state, buildChain(targetYaml(false) + "chain: []\n", registry));
}
BENCHMARK(BM_Baseline);

void BM_BudgetEstimate(benchmark::State& state) {
  hfchain::PluginRegistry registry;
  sendAll(state, buildChain(targetYaml(false) + kBudgetChain, registry));
}
BENCHMARK(BM_BudgetEstimate);

// Counts the requests with the counter of the target alone, as the budget link has the host
// do once per request.
void countAll(benchmark::State& state, bool tokenizer) {
  hfchain::PluginRegistry registry;
  ChainSnapshotPtr snapshot = buildChain(targetYaml(tokenizer) + "chain: []\n", registry);
  const hfchain::TokenCounter* counter = snapshot->tokenCounter("t");
  int64_t iteration = 0;
  int64_t total_tokens = 0;
  for (auto _ : state) {
    hfchain::Request request = requestFor(iteration++);
    const int64_t tokens = counter->countRequest(request).tokens;
    total_tokens += tokens;
    benchmark::DoNotOptimize(tokens);
  }
  state.counters["mean_prompt_tokens"] =
      static_cast<double>(total_tokens) / static_cast<double>(std::max<int64_t>(iteration, 1));
}

void BM_CountEstimate(benchmark::State& state) { countAll(state, false); }
BENCHMARK(BM_CountEstimate);

void BM_CountTokenizer(benchmark::State& state) {
  if (skipWithoutTokenizer(state)) return;
  countAll(state, true);
}
BENCHMARK(BM_CountTokenizer);

void BM_BudgetTokenizer(benchmark::State& state) {
  if (skipWithoutTokenizer(state)) return;
  hfchain::PluginRegistry registry;
  sendAll(state, buildChain(targetYaml(true) + kBudgetChain, registry));
}
BENCHMARK(BM_BudgetTokenizer);

}  // namespace

BENCHMARK_MAIN();
