// Throughput of the SSE parser and the stream decoders on large synthetic streams built from
// recorded TGI and OpenAI-compatible token events, fed in 4 KiB chunks as a socket would.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "hfchain/decoders.h"
#include "hfchain/sse.h"

namespace {

constexpr size_t kChunkBytes = 4096;
constexpr size_t kStreamBytes = 8 * 1024 * 1024;

// Returns the response body of a recording in tests/data/recorded.
std::string recordedBody(const std::string& name) {
  std::ifstream in(std::string(HFCHAIN_TEST_DATA_DIR) + "/recorded/" + name + ".json");
  if (!in) throw std::runtime_error("recording not found: " + name);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const nlohmann::json document = nlohmann::json::parse(buffer.str());
  std::string body;
  for (const auto& chunk : document["response"]["body_chunks"]) body += chunk.get<std::string>();
  return body;
}

// Repeats the token events of a recorded stream (all events before the one containing
// `final_marker`) until the stream reaches kStreamBytes, so that it never finishes.
std::string buildStream(const std::string& recording, const std::string& final_marker) {
  const std::string body = recordedBody(recording);
  const size_t final_event = body.find(final_marker);
  const std::string tokens = body.substr(0, body.rfind("\n\n", final_event) + 2);
  std::string stream;
  stream.reserve(kStreamBytes + tokens.size());
  while (stream.size() < kStreamBytes) stream += tokens;
  return stream;
}

const std::string& tgiStream() {
  // The last event of this recording is the only one with a non-null generated_text.
  static const std::string stream = buildStream("tgi-stream-llama3.2-3b", "\"generated_text\":\"");
  return stream;
}

const std::string& openAiStream() {
  static const std::string stream =
      buildStream("tgi-chat-stream-3.2.1", "\"finish_reason\":\"length\"");
  return stream;
}

class CountingSink : public hfchain::EventSink {
 public:
  void onEvent(const hfchain::Event& event) override {
    ++events;
    bytes += event.text.size();
  }
  int64_t events = 0;
  int64_t bytes = 0;
};

void feedChunks(std::string_view stream, hfchain::StreamDecoder& decoder,
                hfchain::EventSink& sink) {
  for (size_t pos = 0; pos < stream.size(); pos += kChunkBytes) {
    decoder.feed(stream.substr(pos, kChunkBytes), sink);
  }
}

int64_t peakRssKib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void BM_SseFraming(benchmark::State& state) {
  const std::string_view stream = tgiStream();
  hfchain::sse::Parser parser;
  int64_t messages = 0;
  for (auto _ : state) {
    for (size_t pos = 0; pos < stream.size(); pos += kChunkBytes) {
      const hfchain::Error error =
          parser.feed(stream.substr(pos, kChunkBytes), [&](const hfchain::sse::Message& message) {
            benchmark::DoNotOptimize(message.data.data());
            ++messages;
          });
      if (!error.ok()) state.SkipWithError(error.message.c_str());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SseFraming)->Unit(benchmark::kMillisecond);

void benchmarkDecoder(benchmark::State& state, hfchain::StreamFormat format,
                      std::string_view stream) {
  CountingSink sink;
  for (auto _ : state) {
    auto decoder = hfchain::makeStreamDecoder(format);
    feedChunks(stream, *decoder, sink);
    if (decoder->done()) state.SkipWithError("the synthetic stream ended early");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(sink.events), benchmark::Counter::kIsRate);
}

void BM_TgiDecode(benchmark::State& state) {
  benchmarkDecoder(state, hfchain::StreamFormat::kTgi, tgiStream());
}
BENCHMARK(BM_TgiDecode)->Unit(benchmark::kMillisecond);

void BM_OpenAiDecode(benchmark::State& state) {
  benchmarkDecoder(state, hfchain::StreamFormat::kOpenAi, openAiStream());
}
BENCHMARK(BM_OpenAiDecode)->Unit(benchmark::kMillisecond);

// Passes 1 GiB of TGI token events through one decoder and reports the peak resident set size
// before and after, which stays flat when the decoder keeps constant memory.
void BM_TgiDecodeOneGibPeakRss(benchmark::State& state) {
  const std::string_view stream = tgiStream();
  constexpr int64_t kTotalBytes = int64_t{1} << 30;
  const int64_t rss_before = peakRssKib();
  CountingSink sink;
  int64_t fed = 0;
  for (auto _ : state) {
    auto decoder = hfchain::makeStreamDecoder(hfchain::StreamFormat::kTgi);
    for (fed = 0; fed < kTotalBytes; fed += static_cast<int64_t>(stream.size())) {
      feedChunks(stream, *decoder, sink);
    }
    if (decoder->done()) state.SkipWithError("the synthetic stream ended early");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * fed);
  state.counters["peak_rss_before_kib"] = static_cast<double>(rss_before);
  state.counters["peak_rss_after_kib"] = static_cast<double>(peakRssKib());
  state.counters["events"] = static_cast<double>(sink.events);
}
BENCHMARK(BM_TgiDecodeOneGibPeakRss)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
