// The cost of the chain itself: a request through N links that pass it on unchanged, each
// a dlopen plugin crossing the C ABI, ending in an in-memory answer.
#include <benchmark/benchmark.h>

#include "hfchain/engine.h"

namespace {

using hfchain::ChainSnapshot;
using hfchain::ChainSnapshotPtr;

ChainSnapshotPtr buildChain(int links, hfchain::PluginRegistry& registry) {
  std::string yaml = "chain:\n";
  for (int i = 0; i < links; ++i) {
    yaml += "  - link: pass\n    plugin: " HFCHAIN_TEST_PLUGIN_DIR "/plugin_good.so\n";
  }
  if (links == 0) yaml = "chain: []\n";
  hfchain::ParsedConfig parsed = hfchain::parseConfig(yaml, "bench.yaml");
  auto terminal = [](hfchain::Request&) { return hfchain::makeTextResponse("ok"); };
  auto snapshot = ChainSnapshot::build(parsed.config, registry, terminal);
  if (!snapshot.ok()) {
    fprintf(stderr, "chain_bench: %s\n", snapshot.error().message.c_str());
    std::abort();
  }
  return *snapshot;
}

// Sends one chat request through the chain and reads its two events.
void BM_RequestThroughLinks(benchmark::State& state) {
  hfchain::PluginRegistry registry;
  ChainSnapshotPtr snapshot = buildChain(static_cast<int>(state.range(0)), registry);
  hfchain::Request prototype;
  prototype.id = "bench";
  prototype.messages = {{"user", "Hello"}};
  hfchain::Event event;
  for (auto _ : state) {
    hfchain::Request request = prototype;
    hfchain::Response response = snapshot->send(request);
    while (response.stream->next(event)) {
    }
    benchmark::DoNotOptimize(event);
  }
}
BENCHMARK(BM_RequestThroughLinks)->Arg(0)->Arg(1)->Arg(8);

}  // namespace

BENCHMARK_MAIN();
