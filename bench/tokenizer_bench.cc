// Measures hfchain::Tokenizer::encode throughput on the corpus sample, cut into 4 KiB pieces
// at UTF-8 character boundaries, for each tokenizer fetched by scripts/fetch-tokenizers.sh.
// bench/tokenizer_ref/ measures the Hugging Face tokenizers library the same way.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "hfchain/tokenizer.h"

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kPieceBytes = 4096;
constexpr std::size_t kLargeCorpusBytes = 4 * 1024 * 1024;

const fs::path kDataDir = HFCHAIN_TEST_DATA_DIR;

std::string readFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Cuts text into pieces of at most kPieceBytes that end on a UTF-8 character boundary.
std::vector<std::string> cutPieces(const std::string& text) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = std::min(start + kPieceBytes, text.size());
    while (end < text.size() && end > start &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    pieces.push_back(text.substr(start, end - start));
    start = end;
  }
  return pieces;
}

std::string repeatTo(const std::string& text, std::size_t size) {
  std::string out;
  out.reserve(size + text.size());
  while (out.size() < size) out += text;
  return out;
}

const hfchain::Tokenizer* tokenizerNamed(const std::string& name) {
  static std::map<std::string, hfchain::TokenizerConstSharedPtr> loaded;
  auto it = loaded.find(name);
  if (it != loaded.end()) return it->second.get();
  hfchain::TokenizerLoadResult result =
      hfchain::Tokenizer::load(kDataDir / "tokenizers" / "cache" / name / "tokenizer.json");
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.error.message.c_str());
    return nullptr;
  }
  loaded.emplace(name, result.tokenizer);
  return result.tokenizer.get();
}

void encodePieces(benchmark::State& state, const std::string& name, bool large) {
  const hfchain::Tokenizer* tokenizer = tokenizerNamed(name);
  if (tokenizer == nullptr) {
    state.SkipWithError("tokenizer files missing: run scripts/fetch-tokenizers.sh");
    return;
  }
  std::string corpus = readFile(kDataDir / "corpus-sample.txt");
  if (large) corpus = repeatTo(corpus, kLargeCorpusBytes);
  std::vector<std::string> pieces = cutPieces(corpus);
  std::size_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& piece : pieces) {
      std::vector<int32_t> ids = tokenizer->encode(piece, false);
      tokens += ids.size();
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
  state.counters["tokens"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void registerAll() {
  for (const char* name : {"llama3", "qwen3", "gemma3"}) {
    benchmark::RegisterBenchmark(
        (std::string("Encode4KiB/") + name + "/sample64k").c_str(),
        [name](benchmark::State& state) { encodePieces(state, name, false); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(
        (std::string("Encode4KiB/") + name + "/repeated4m").c_str(),
        [name](benchmark::State& state) { encodePieces(state, name, true); })
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  registerAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
