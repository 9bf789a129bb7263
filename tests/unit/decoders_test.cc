// Tests of the TGI and OpenAI-compatible decoders and of the upstream error mapping, on the
// recorded exchanges in tests/data/recorded and the parser cases in tests/data/cases.
#include "hfchain/decoders.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace hfchain {
namespace {

using nlohmann::json;

const std::filesystem::path kDataDir = HFCHAIN_TEST_DATA_DIR;

struct Recording {
  std::string name;
  std::string path;  // request path
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string body;
};

json readJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return json::parse(buffer.str());
}

Recording loadRecordingFile(const std::filesystem::path& file) {
  const json document = readJson(file);
  Recording recording;
  recording.name = file.stem().string();
  recording.path = document["request"].value("path", "");
  const json& response = document["response"];
  recording.status = response["status"].get<int>();
  for (const auto& [name, value] : response["headers"].items()) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "content-type") recording.content_type = value.get<std::string>();
    if (lower == "retry-after") recording.retry_after = value.get<std::string>();
  }
  for (const json& chunk : response["body_chunks"]) recording.body += chunk.get<std::string>();
  return recording;
}

Recording loadRecording(const std::string& name) {
  return loadRecordingFile(kDataDir / "recorded" / (name + ".json"));
}

std::vector<Recording> loadAllRecordings() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kDataDir / "recorded")) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Recording> recordings;
  for (const auto& file : files) recordings.push_back(loadRecordingFile(file));
  return recordings;
}

bool isEventStream(const Recording& recording) {
  return recording.content_type.find("text/event-stream") != std::string::npos;
}

// OpenAI-style bodies carry `choices`; TGI native bodies never do.
StreamFormat formatOf(const Recording& recording) {
  return recording.body.find("\"choices\"") != std::string::npos ? StreamFormat::kOpenAi
                                                                 : StreamFormat::kTgi;
}

class CollectingSink : public EventSink {
 public:
  void onEvent(const Event& event) override { events.push_back(event); }

  std::vector<std::string> tokens() const {
    std::vector<std::string> out;
    for (const Event& event : events) {
      if (event.kind == EventKind::kToken) out.push_back(event.text);
    }
    return out;
  }

  std::string text() const {
    std::string out;
    for (const Event& event : events) {
      if (event.kind == EventKind::kToken) out += event.text;
    }
    return out;
  }

  const Event& last() const { return events.back(); }

  std::vector<Event> events;
};

// Renders an event with every field, so that two decodings can be compared exactly.
std::string render(const Event& event) {
  std::ostringstream out;
  out << static_cast<int>(event.kind) << '|' << event.text << '|' << event.token_id << '|'
      << (event.logprob ? std::to_string(*event.logprob) : "none") << '|' << event.special << '|'
      << event.finish_reason << '|' << event.usage.prompt_tokens << ','
      << event.usage.completion_tokens << ',' << event.usage.total_tokens << '|'
      << event.generated_text << '|' << static_cast<int>(event.error.cls) << '|'
      << event.error.message << '|' << event.error.error_type;
  return out.str();
}

std::vector<std::string> renderAll(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& event : events) out.push_back(render(event));
  return out;
}

CollectingSink decodeChunks(StreamFormat format, const std::vector<std::string>& chunks,
                            DecoderOptions options = {}) {
  CollectingSink sink;
  auto decoder = makeStreamDecoder(format, options);
  for (const std::string& chunk : chunks) decoder->feed(chunk, sink);
  decoder->finish(sink);
  return sink;
}

CollectingSink decodeStream(StreamFormat format, const std::string& body) {
  return decodeChunks(format, {body});
}

CollectingSink decodeBody(StreamFormat format, const std::string& body) {
  CollectingSink sink;
  decodeCompleteBody(format, body, sink);
  return sink;
}

std::vector<std::string> splitRandomly(const std::string& body, std::mt19937& rng,
                                       size_t max_piece) {
  std::uniform_int_distribution<size_t> size_dist(1, max_piece);
  std::vector<std::string> chunks;
  for (size_t pos = 0; pos < body.size();) {
    const size_t size = std::min(size_dist(rng), body.size() - pos);
    chunks.push_back(body.substr(pos, size));
    pos += size;
  }
  return chunks;
}

// --- Streams: every recording ---------------------------------------------------------------

TEST(StreamDecoder, RecordedStreamsEndWithOneFinalEvent) {
  int streams = 0;
  for (const Recording& recording : loadAllRecordings()) {
    if (!isEventStream(recording)) continue;
    ++streams;
    const CollectingSink sink = decodeStream(formatOf(recording), recording.body);
    ASSERT_FALSE(sink.events.empty()) << recording.name;
    for (size_t i = 0; i + 1 < sink.events.size(); ++i) {
      EXPECT_EQ(sink.events[i].kind, EventKind::kToken) << recording.name << " event " << i;
    }
    EXPECT_NE(sink.last().kind, EventKind::kToken) << recording.name;
    EXPECT_NE(sink.last().error.cls, ErrorClass::kStreamIncomplete) << recording.name;
    EXPECT_NE(sink.last().error.cls, ErrorClass::kStreamParse) << recording.name;
  }
  EXPECT_GE(streams, 15);
}

TEST(StreamDecoder, RecordedStreamsIndependentOfChunking) {
  std::mt19937 rng(7321);
  for (const Recording& recording : loadAllRecordings()) {
    if (!isEventStream(recording)) continue;
    const StreamFormat format = formatOf(recording);
    const auto expected = renderAll(decodeStream(format, recording.body).events);
    for (int round = 0; round < 16; ++round) {
      const size_t max_piece = round % 4 == 0 ? 1 : 2 + (round * 37) % 300;
      const auto chunks = splitRandomly(recording.body, rng, max_piece);
      ASSERT_EQ(renderAll(decodeChunks(format, chunks).events), expected)
          << recording.name << " round " << round << " max_piece " << max_piece;
    }
  }
}

TEST(StreamDecoder, RecordedStreamsWithCrlfAndBom) {
  // The recordings use LF only, so the same streams are rewritten with CRLF and a leading
  // byte order mark to check that the framing does not change the decoded events.
  std::mt19937 rng(99);
  for (const Recording& recording : loadAllRecordings()) {
    if (!isEventStream(recording)) continue;
    std::string rewritten = "\xEF\xBB\xBF";
    for (char c : recording.body) {
      if (c == '\n') rewritten += '\r';
      rewritten += c;
    }
    const StreamFormat format = formatOf(recording);
    const auto expected = renderAll(decodeStream(format, recording.body).events);
    for (int round = 0; round < 4; ++round) {
      const auto chunks = splitRandomly(rewritten, rng, round % 2 == 0 ? 1 : 64);
      ASSERT_EQ(renderAll(decodeChunks(format, chunks).events), expected) << recording.name;
    }
  }
}

// --- Streams: exact expectations on a few recordings -----------------------------------------

TEST(TgiStreamDecoder, FlanT5SpecialEos) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kTgi, loadRecording("tgi-stream-flan-t5-special-eos").body);
  const std::vector<std::string> expected = {"one", " two", " three", " four", "</s>"};
  EXPECT_EQ(sink.tokens(), expected);
  ASSERT_EQ(sink.events.size(), 6u);
  EXPECT_EQ(sink.events[0].token_id, 80);
  EXPECT_FALSE(sink.events[0].special);
  EXPECT_TRUE(sink.events[4].special);
  ASSERT_TRUE(sink.events[0].logprob.has_value());
  EXPECT_DOUBLE_EQ(*sink.events[0].logprob, -0.75390625);
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().generated_text, "one two three four");
  EXPECT_EQ(sink.last().finish_reason, "");
}

TEST(TgiStreamDecoder, DetailsGiveUsage) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kTgi, loadRecording("tgi-generate-stream-details-new").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, ".");
  EXPECT_EQ(sink.events[0].token_id, 13);
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.completion_tokens, 1);
  EXPECT_EQ(sink.last().usage.prompt_tokens, 1);
  EXPECT_EQ(sink.last().usage.total_tokens, 2);
  EXPECT_EQ(sink.last().generated_text, ".");
}

TEST(TgiStreamDecoder, OldDataWithoutSpace) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kTgi, loadRecording("tgi-generate-stream-old-data-nospace").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, " ");
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.completion_tokens, 1);
  EXPECT_EQ(sink.last().usage.prompt_tokens, -1);
}

TEST(TgiStreamDecoder, Llama32FiftyTokens) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kTgi, loadRecording("tgi-stream-llama3.2-3b").body);
  EXPECT_EQ(sink.tokens().size(), 50u);
  EXPECT_EQ(sink.text(), " 1. 2. 3. 4. 5. 6. 7. 8. 9. 10. 11. 12. 13. 14. 15. 16. 17");
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
}

TEST(TgiStreamDecoder, ErrorEventIsValidationError) {
  for (const char* name : {"tgi-stream-error-event-old", "tgi-stream-error-event-new"}) {
    const CollectingSink sink = decodeStream(StreamFormat::kTgi, loadRecording(name).body);
    ASSERT_EQ(sink.events.size(), 1u) << name;
    EXPECT_EQ(sink.last().kind, EventKind::kError) << name;
    EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamValidation) << name;
    EXPECT_EQ(sink.last().error.error_type, "validation") << name;
    EXPECT_NE(sink.last().error.message.find("must be <= 4096"), std::string::npos) << name;
  }
}

TEST(OpenAiStreamDecoder, TgiChat321) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("tgi-chat-stream-3.2.1").body);
  const auto tokens = sink.tokens();
  ASSERT_GE(tokens.size(), 3u);
  EXPECT_EQ(tokens[0], "Deep");
  EXPECT_EQ(tokens[1], " learning");
  EXPECT_EQ(tokens[2], " is");
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_FALSE(sink.last().usage.present());
}

TEST(OpenAiStreamDecoder, TogetherTokenIdsAndUsage) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("router-together-chat-stream").body);
  // Together sends each piece twice, as `text` and as `delta.content`; it must count once.
  EXPECT_EQ(sink.tokens().size(), 20u);
  EXPECT_EQ(sink.events[0].text, "Deep");
  EXPECT_EQ(sink.events[0].token_id, 34564);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.prompt_tokens, 26);
  EXPECT_EQ(sink.last().usage.completion_tokens, 20);
  EXPECT_EQ(sink.last().usage.total_tokens, 46);
}

TEST(OpenAiStreamDecoder, CerebrasUsageOnFinishChunk) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("router-cerebras-chat-stream-usage").body);
  EXPECT_EQ(sink.tokens().front(), "Deep");
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.prompt_tokens, 46);
  EXPECT_EQ(sink.last().usage.completion_tokens, 20);
  EXPECT_EQ(sink.last().usage.total_tokens, 66);
}

TEST(OpenAiStreamDecoder, SambanovaSkipsEmptyContent) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("router-sambanova-chat-stream").body);
  const std::vector<std::string> expected = {
      "Deep learning is a subset of machine learning that involves the use of artificial neural "
      "networks with multiple ",
      "layers to"};
  EXPECT_EQ(sink.tokens(), expected);
  EXPECT_EQ(sink.last().finish_reason, "length");
}

TEST(OpenAiStreamDecoder, LegacyChatWithoutDone) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("tgi-chat-stream-1.4.3-legacy").body);
  EXPECT_EQ(sink.tokens().front(), "Deep");
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "length");
}

TEST(OpenAiStreamDecoder, LegacyChatEosText) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, loadRecording("tgi-chat-stream-2.0.1-legacy").body);
  EXPECT_EQ(sink.tokens().front(), " The");
  // TGI 2.0.1 sent the end-of-sequence text as content; the decoder passes it on unchanged.
  EXPECT_EQ(sink.tokens().back(), "</s>");
  EXPECT_EQ(sink.last().finish_reason, "eos_token");
}

// --- Streams: synthetic cases ----------------------------------------------------------------

const char kChatChunkPrefix[] = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[";

std::string chatChunk(const std::string& choice) { return kChatChunkPrefix + choice + "]}\n\n"; }

TEST(OpenAiStreamDecoder, FinishReasonThenCleanEndFinishes) {
  const CollectingSink sink = decodeStream(
      StreamFormat::kOpenAi, chatChunk(R"({"index":0,"delta":{"content":"Hi"}})") +
                                 chatChunk(R"({"index":0,"delta":{},"finish_reason":"stop"})"));
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "stop");
}

TEST(OpenAiStreamDecoder, EndWithoutFinishIsIncomplete) {
  const CollectingSink sink = decodeStream(
      StreamFormat::kOpenAi, chatChunk(R"({"index":0,"delta":{"content":"Hi"}})") +
                                 chatChunk(R"({"index":0,"delta":{"content":" there"}})"));
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kStreamIncomplete);
  EXPECT_NE(sink.last().error.message.find("after 2 tokens"), std::string::npos)
      << sink.last().error.message;
}

TEST(OpenAiStreamDecoder, UsageChunkWithEmptyChoices) {
  const CollectingSink sink = decodeStream(
      StreamFormat::kOpenAi,
      chatChunk(R"({"index":0,"delta":{"content":"Hi"},"finish_reason":"length"})") +
          "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
          "\"total_tokens\":4}}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.prompt_tokens, 3);
  EXPECT_EQ(sink.last().usage.completion_tokens, 1);
  EXPECT_EQ(sink.last().usage.total_tokens, 4);
}

TEST(OpenAiStreamDecoder, OnlyChoiceZeroRead) {
  const CollectingSink sink = decodeStream(
      StreamFormat::kOpenAi,
      chatChunk(R"({"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}})") +
          "data: [DONE]\n\n");
  const std::vector<std::string> expected = {"A"};
  EXPECT_EQ(sink.tokens(), expected);
}

TEST(OpenAiStreamDecoder, CompletionsText) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi,
                   "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":"
                   "\" Paris\",\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n");
  const std::vector<std::string> expected = {" Paris"};
  EXPECT_EQ(sink.tokens(), expected);
  EXPECT_EQ(sink.last().finish_reason, "length");
}

TEST(OpenAiStreamDecoder, ErrorObjectMidStream) {
  const CollectingSink sink = decodeStream(
      StreamFormat::kOpenAi,
      chatChunk(R"({"index":0,"delta":{"content":"Hi"}})") +
          "data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"server_error\","
          "\"code\":null}}\n\n");
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.last().kind, EventKind::kError);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamGeneration);
  EXPECT_EQ(sink.last().error.message, "CUDA out of memory");
  EXPECT_EQ(sink.last().error.error_type, "server_error");
}

TEST(OpenAiStreamDecoder, ErrorObjectWithStatusCode) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi,
                   "data: {\"error\":{\"message\":\"slow down\",\"http_status_code\":429}}\n\n");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kRateLimited);
}

TEST(OpenAiStreamDecoder, TgiStyleErrorMidStream) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi,
                   "data: {\"error\":\"Request failed during generation: boom\","
                   "\"error_type\":\"generation\"}\n\n");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamGeneration);
  EXPECT_EQ(sink.last().error.error_type, "generation");
}

TEST(OpenAiStreamDecoder, ErrorNamedEventWithPlainText) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, "event: error\ndata: upstream overloaded\n\n");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamGeneration);
  EXPECT_EQ(sink.last().error.message, "upstream overloaded");
}

TEST(OpenAiStreamDecoder, OtherNamedEventsIgnored) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kOpenAi, "event: ping\ndata: {}\n\n" +
                                              chatChunk(R"({"index":0,"delta":{"content":"Hi"}})") +
                                              "data: [DONE]\n\n");
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
}

TEST(TgiStreamDecoder, ErrorObjectWithMessage) {
  const CollectingSink sink =
      decodeStream(StreamFormat::kTgi, "data: {\"error\":{\"message\":\"model crashed\"}}\n\n");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamGeneration);
  EXPECT_EQ(sink.last().error.message, "model crashed");
}

TEST(TgiStreamDecoder, InvalidJsonIsParseError) {
  const CollectingSink sink = decodeStream(StreamFormat::kTgi, "data: {\"token\":\n\n");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kStreamParse);
  EXPECT_NE(sink.last().error.message.find("{\"token\":"), std::string::npos);
}

TEST(TgiStreamDecoder, CutOffStreamIsIncomplete) {
  const std::string body = loadRecording("tgi-stream-llama2-full-text").body;
  const CollectingSink sink = decodeStream(StreamFormat::kTgi, body.substr(0, body.size() / 2));
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kStreamIncomplete);
  EXPECT_NE(sink.last().error.message.find("closed the stream before its final event"),
            std::string::npos);
  EXPECT_NE(sink.last().error.message.find(std::to_string(sink.tokens().size()) + " tokens"),
            std::string::npos);
}

TEST(TgiStreamDecoder, EventTooLargeIsError) {
  DecoderOptions options;
  options.max_event_bytes = 256;
  const std::string big = "data: {\"token\":{\"text\":\"" + std::string(400, 'x') + "\"}}\n\n";
  const CollectingSink sink = decodeChunks(StreamFormat::kTgi, {big}, options);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kEventTooLarge);
  EXPECT_NE(sink.last().error.message.find("max_event_bytes"), std::string::npos);
}

TEST(TgiStreamDecoder, InputAfterFinishIgnored) {
  const std::string body = loadRecording("tgi-generate-stream-details-new").body;
  const CollectingSink sink = decodeChunks(StreamFormat::kTgi, {body, body, "garbage\n\n"});
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(TgiStreamDecoder, ParserBufferBoundedOnLongStream) {
  const std::string event =
      "data: {\"index\":1,\"token\":{\"id\":13,\"text\":\"hello\",\"logprob\":-0.5,"
      "\"special\":false},\"generated_text\":null,\"details\":null}\n\n";
  std::string block;
  for (int i = 0; i < 1000; ++i) block += event;

  class CountingSink : public EventSink {
   public:
    void onEvent(const Event&) override { ++count; }
    int64_t count = 0;
  } sink;
  auto decoder = makeStreamDecoder(StreamFormat::kTgi);
  size_t max_capacity = 0;
  for (int pass = 0; pass < 5; ++pass) {
    for (size_t pos = 0; pos < block.size(); pos += 4096) {
      decoder->feed(std::string_view(block).substr(pos, 4096), sink);
      max_capacity = std::max(max_capacity, decoder->parser().bufferCapacity());
    }
  }
  EXPECT_EQ(sink.count, 5000);
  EXPECT_EQ(decoder->tokenCount(), 5000);
  EXPECT_LE(max_capacity, 1024u);
}

// --- Parser fault cases ----------------------------------------------------------------------

std::string hexToBytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string chunkBytes(const json& chunk) {
  if (chunk.contains("text")) return chunk["text"].get<std::string>();
  if (chunk.contains("hex")) return hexToBytes(chunk["hex"].get<std::string>());
  if (chunk.contains("repeat")) {
    std::string out;
    const std::string piece = chunk["repeat"].get<std::string>();
    for (int i = 0; i < chunk["count"].get<int>(); ++i) out += piece;
    return out;
  }
  std::string out;
  for (const json& part : chunk["parts"]) out += chunkBytes(part);
  return out;
}

struct CaseStream {
  json expect;
  StreamFormat format = StreamFormat::kTgi;
  std::vector<std::string> chunks;
};

// Loads the upstream chunks of the first exchange that serves request `request` of a case.
CaseStream loadCase(const std::string& id, const std::string& request) {
  const json document = readJson(kDataDir / "cases" / (id + ".json"));
  CaseStream stream;
  for (const json& step : document["steps"]) {
    if (!step.contains("request") || step["request"]["name"] != request) continue;
    const std::string api = step["request"]["api"].get<std::string>();
    stream.format = api.rfind("tgi.", 0) == 0 ? StreamFormat::kTgi : StreamFormat::kOpenAi;
    const std::string target = step["request"]["target"].get<std::string>();
    for (const json& chunk : document["upstream_script"][target][0]["chunks"]) {
      stream.chunks.push_back(chunkBytes(chunk));
    }
  }
  stream.expect = document["expect"][request];
  return stream;
}

void expectCaseOutcome(const std::string& id, const std::string& request) {
  SCOPED_TRACE(id + " " + request);
  const CaseStream stream = loadCase(id, request);
  ASSERT_FALSE(stream.chunks.empty());
  const CollectingSink sink = decodeChunks(stream.format, stream.chunks);
  ASSERT_FALSE(sink.events.empty());
  EXPECT_EQ(sink.last().kind, EventKind::kFinish) << render(sink.last());
  if (stream.expect.contains("tokens")) {
    EXPECT_EQ(sink.tokens(), stream.expect["tokens"].get<std::vector<std::string>>());
  }
  EXPECT_EQ(sink.text(), stream.expect["text"].get<std::string>());
  EXPECT_EQ(sink.last().finish_reason, stream.expect["finish_reason"].get<std::string>());
  if (stream.expect.contains("generated_tokens")) {
    EXPECT_EQ(sink.last().usage.completion_tokens, stream.expect["generated_tokens"].get<int>());
  }
}

TEST(StreamDecoderCases, CrlfSplitAcrossReads) { expectCaseOutcome("C01", "r1"); }

TEST(StreamDecoderCases, Utf8SplitAcrossReads) { expectCaseOutcome("C02", "r1"); }

TEST(StreamDecoderCases, UnknownFieldsAndNoSpace) { expectCaseOutcome("C03", "r1"); }

TEST(StreamDecoderCases, CommentsAndFieldOnlyBlocks) { expectCaseOutcome("C10", "r1"); }

TEST(StreamDecoderCases, FieldOnlyBlocksNotDispatched) {
  const CaseStream stream = loadCase("C10", "r1");
  sse::Parser parser;
  int json_events = 0;
  for (const std::string& chunk : stream.chunks) {
    const Error error = parser.feed(chunk, [&](const sse::Message& message) {
      if (message.data != "[DONE]") ++json_events;
    });
    ASSERT_TRUE(error.ok());
  }
  EXPECT_EQ(json_events, stream.expect["json_events_decoded"].get<int>());
}

TEST(StreamDecoderCases, EmptyTokenTextCounts) {
  expectCaseOutcome("C11", "r1");
  const CaseStream stream = loadCase("C11", "r1");
  const CollectingSink sink = decodeChunks(stream.format, stream.chunks);
  ASSERT_EQ(sink.tokens().size(), 5u);
  EXPECT_EQ(sink.tokens()[2], "");
}

TEST(StreamDecoderCases, CasesIndependentOfChunking) {
  std::mt19937 rng(4242);
  for (const char* id : {"C01", "C02", "C03", "C10", "C11"}) {
    const CaseStream stream = loadCase(id, "r1");
    std::string body;
    for (const std::string& chunk : stream.chunks) body += chunk;
    const auto expected = renderAll(decodeChunks(stream.format, stream.chunks).events);
    for (int round = 0; round < 30; ++round) {
      const auto chunks = splitRandomly(body, rng, round % 3 == 0 ? 1 : 1 + round * 7);
      ASSERT_EQ(renderAll(decodeChunks(stream.format, chunks).events), expected) << id;
    }
  }
}

// --- Whole bodies ----------------------------------------------------------------------------

TEST(CompleteBodyDecoder, TgiArrayWithDetails) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kTgi, loadRecording("tgi-generate-compat-with-details").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].kind, EventKind::kToken);
  EXPECT_EQ(sink.events[0].text, ".");
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "length");
  EXPECT_EQ(sink.last().usage.completion_tokens, 1);
  EXPECT_EQ(sink.last().generated_text, ".");
}

TEST(CompleteBodyDecoder, TgiArrayWithoutDetails) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kTgi, loadRecording("tgi-generate-compat-no-details").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, ".");
  EXPECT_EQ(sink.last().finish_reason, "");
}

TEST(CompleteBodyDecoder, TgiBestOfWithLargeSeed) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kTgi, loadRecording("tgi-generate-compat-best-of").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, "us");
  EXPECT_EQ(sink.last().finish_reason, "length");
}

TEST(CompleteBodyDecoder, TgiGrammar) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kTgi, loadRecording("tgi-generate-grammar").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text.rfind("{\n\n    \"activity\"", 0), 0u) << sink.events[0].text;
}

TEST(CompleteBodyDecoder, TgiObject) {
  const CollectingSink sink = decodeBody(
      StreamFormat::kTgi,
      R"({"generated_text":"Hi","details":{"finish_reason":"eos_token","generated_tokens":2,"input_length":5}})");
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, "Hi");
  EXPECT_EQ(sink.last().finish_reason, "eos_token");
  EXPECT_EQ(sink.last().usage.total_tokens, 7);
}

TEST(CompleteBodyDecoder, OpenAiChat) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kOpenAi, loadRecording("tgi-chat-nonstream-3.2.1").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text.rfind("Deep learning is a subfield", 0), 0u);
  EXPECT_EQ(sink.last().finish_reason, "stop");
  EXPECT_EQ(sink.last().usage.prompt_tokens, 46);
  EXPECT_EQ(sink.last().usage.completion_tokens, 579);
  EXPECT_EQ(sink.last().usage.total_tokens, 625);
  EXPECT_EQ(sink.last().generated_text, sink.events[0].text);
}

TEST(CompleteBodyDecoder, OpenAiFireworksAndResponseFormat) {
  for (const char* name : {"router-fireworks-chat-nonstream", "tgi-chat-response-format-2.1.1"}) {
    const CollectingSink sink = decodeBody(StreamFormat::kOpenAi, loadRecording(name).body);
    ASSERT_EQ(sink.events.size(), 2u) << name;
    EXPECT_FALSE(sink.events[0].text.empty()) << name;
    EXPECT_EQ(sink.last().kind, EventKind::kFinish) << name;
  }
}

TEST(CompleteBodyDecoder, OpenAiToolCallHasNoToken) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kOpenAi, loadRecording("tgi-chat-tool-call-1.4.5").body);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().kind, EventKind::kFinish);
  EXPECT_EQ(sink.last().finish_reason, "eos_token");
  EXPECT_EQ(sink.last().usage.completion_tokens, 27);
}

TEST(CompleteBodyDecoder, CompletionsPicksIndexZero) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kOpenAi, loadRecording("tgi-v1-completions-many-prompts").body);
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].text, " A Beginner\xE2\x80\x99s Guide\nDeep learning is a subset");
  EXPECT_EQ(sink.last().usage.total_tokens, 62);
}

TEST(CompleteBodyDecoder, InvalidJsonIsParseError) {
  const CollectingSink sink = decodeBody(StreamFormat::kTgi, "not json");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kStreamParse);
}

TEST(CompleteBodyDecoder, WrongProtocolIsParseError) {
  const CollectingSink sink =
      decodeBody(StreamFormat::kTgi, loadRecording("tgi-chat-nonstream-3.2.1").body);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kStreamParse);
}

TEST(CompleteBodyDecoder, ErrorObjectIsError) {
  const CollectingSink sink = decodeBody(
      StreamFormat::kTgi, R"({"error":"Input validation error","error_type":"validation"})");
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.last().error.cls, ErrorClass::kUpstreamValidation);
}

// --- Upstream errors -------------------------------------------------------------------------

struct ExpectedError {
  ErrorClass cls;
  std::string message_part;
  std::string error_type;
};

// Every recording with an HTTP status of 300 or more, and what it must map to.
const std::map<std::string, ExpectedError> kExpectedErrors = {
    {"hub-307-renamed-model", {ErrorClass::kUpstreamNotFound, "Redirecting to /api/models", ""}},
    {"inference-proxy-404-model-not-found",
     {ErrorClass::kUpstreamNotFound, "Not Found: Model not found", ""}},
    {"router-401-invalid-credentials",
     {ErrorClass::kUpstreamAuth, "Invalid username or password.", ""}},
    {"serverless-400-non-tgi-model-kwargs",
     {ErrorClass::kUpstreamValidation, "`model_kwargs` are not used by the model", ""}},
    {"serverless-404-model-does-not-exist",
     {ErrorClass::kUpstreamNotFound, "Model this-model-does-not-exist-123 does not exist", ""}},
    {"serverless-503-model-loading", {ErrorClass::kModelLoading, "is currently loading", ""}},
    {"tgi-422-max-total-tokens-flan-t5-2023",
     {ErrorClass::kUpstreamValidation, "must be <= 1512", "validation"}},
    {"tgi-422-max-total-tokens-gpt2",
     {ErrorClass::kUpstreamValidation, "must be <= 1024", "validation"}},
    {"tgi-422-plain-missing-inputs",
     {ErrorClass::kUpstreamValidation, "missing field `inputs`", ""}},
    {"tgi-422-plain-text-deserialize-chat",
     {ErrorClass::kUpstreamValidation, "expected a sequence", ""}},
    {"tgi-422-plain-text-deserialize-generate",
     {ErrorClass::kUpstreamValidation, "invalid type: map, expected a string", ""}},
    {"tgi-chat-422-plain-missing-messages",
     {ErrorClass::kUpstreamValidation, "missing field `messages`", ""}},
    {"tgi-chat-422-template-error",
     {ErrorClass::kUpstreamValidation, "Template error: template not found", "template_error"}},
};

TEST(UpstreamError, EveryErrorRecordingMapped) {
  int errors = 0;
  for (const Recording& recording : loadAllRecordings()) {
    if (recording.status < 300) continue;
    ++errors;
    const auto expected = kExpectedErrors.find(recording.name);
    ASSERT_NE(expected, kExpectedErrors.end()) << "no expectation for " << recording.name;
    const Error error = parseUpstreamError(recording.status, recording.content_type, recording.body,
                                           recording.retry_after);
    EXPECT_EQ(error.cls, expected->second.cls) << recording.name << ": " << error.describe();
    EXPECT_NE(error.message.find(expected->second.message_part), std::string::npos)
        << recording.name << ": " << error.message;
    EXPECT_EQ(error.error_type, expected->second.error_type) << recording.name;
    EXPECT_EQ(error.http_status, recording.status) << recording.name;
  }
  EXPECT_EQ(errors, static_cast<int>(kExpectedErrors.size()));
}

TEST(UpstreamError, PlainTextBodyIsWholeMessage) {
  const Recording recording = loadRecording("tgi-422-plain-missing-inputs");
  const Error error = parseUpstreamError(recording.status, recording.content_type, recording.body,
                                         recording.retry_after);
  EXPECT_EQ(error.message, recording.body);
}

TEST(UpstreamError, ModelLoadingEstimatedTime) {
  const Recording recording = loadRecording("serverless-503-model-loading");
  const Error error = parseUpstreamError(recording.status, recording.content_type, recording.body,
                                         recording.retry_after);
  EXPECT_DOUBLE_EQ(error.estimated_time_s, 20.0);
  EXPECT_EQ(error.message, "Model meta-llama/Llama-2-13b-chat is currently loading");
}

TEST(UpstreamError, ServiceUnavailableWithoutEstimateIs5xx) {
  const Error error = parseUpstreamError(503, "text/plain", "upstream connect error", "");
  EXPECT_EQ(error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(error.message, "upstream connect error");
}

TEST(UpstreamError, ForbiddenIsAuth) {
  EXPECT_EQ(parseUpstreamError(403, "", "", "").cls, ErrorClass::kUpstreamAuth);
}

TEST(UpstreamError, RateLimitedWithRetryAfter) {
  const Error error = parseUpstreamError(
      429, "application/json", R"({"error":"Model is overloaded","error_type":"overloaded"})", "7");
  EXPECT_EQ(error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(error.retry_after_ms, 7000);
  EXPECT_EQ(error.error_type, "overloaded");
  EXPECT_EQ(error.message, "Model is overloaded");
}

TEST(UpstreamError, OpenAiErrorObject) {
  const Error error = parseUpstreamError(
      400, "application/json",
      R"({"error":{"message":"max_tokens is too large","type":"invalid_request_error","code":null}})",
      "");
  EXPECT_EQ(error.cls, ErrorClass::kUpstreamValidation);
  EXPECT_EQ(error.message, "max_tokens is too large");
  EXPECT_EQ(error.error_type, "invalid_request_error");
}

TEST(UpstreamError, TopLevelMessageField) {
  const Error error =
      parseUpstreamError(500, "application/json", R"({"message":"internal failure"})", "");
  EXPECT_EQ(error.cls, ErrorClass::kUpstream5xx);
  EXPECT_EQ(error.message, "internal failure");
}

TEST(UpstreamError, EmptyBodyNamesStatus) {
  const Error error = parseUpstreamError(502, "", "", "");
  EXPECT_EQ(error.cls, ErrorClass::kUpstream5xx);
  EXPECT_NE(error.message.find("HTTP 502"), std::string::npos) << error.message;
}

TEST(UpstreamError, LongBodyTruncated) {
  const Error error = parseUpstreamError(500, "text/html", std::string(5000, 'x'), "");
  EXPECT_LE(error.message.size(), 1003u);
  EXPECT_EQ(error.message.substr(error.message.size() - 3), "...");
}

TEST(UpstreamError, TruncationKeepsUtf8Whole) {
  // 999 bytes of 'x' followed by two-byte characters put a character across the
  // 1000-byte limit, so the cut must fall before it.
  std::string body(999, 'x');
  for (int i = 0; i < 10; ++i) body += "\xC3\xA9";
  const Error error = parseUpstreamError(500, "text/plain", body, "");
  EXPECT_EQ(error.message, std::string(999, 'x') + "...");
}

TEST(RetryAfter, DeltaSeconds) { EXPECT_EQ(parseRetryAfterMs("120"), 120000); }

TEST(RetryAfter, HttpDateRelativeToNow) {
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 seconds after the Unix epoch.
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(784111777 - 30));
  EXPECT_EQ(parseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", now), 30000);
}

TEST(RetryAfter, HttpDateInPastIsZero) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(784111777 + 30));
  EXPECT_EQ(parseRetryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", now), 0);
}

TEST(RetryAfter, InvalidIsMinusOne) {
  EXPECT_EQ(parseRetryAfterMs("soon"), -1);
  EXPECT_EQ(parseRetryAfterMs(""), -1);
  EXPECT_EQ(parseRetryAfterMs("-5"), -1);
}

}  // namespace
}  // namespace hfchain
