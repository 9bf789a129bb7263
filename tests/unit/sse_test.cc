// Tests of the incremental Server-Sent Events parser against the WHATWG parsing rules.
#include "hfchain/sse.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hfchain::sse {
namespace {

struct Received {
  std::string event;
  std::string data;
  std::string id;

  bool operator==(const Received&) const = default;
};

// Feeds `chunks` in order and returns the dispatched messages; fails the test on a parser error.
std::vector<Received> parseChunks(Parser& parser, const std::vector<std::string>& chunks) {
  std::vector<Received> received;
  for (const std::string& chunk : chunks) {
    const Error error = parser.feed(chunk, [&](const Message& message) {
      received.push_back(
          {std::string(message.event), std::string(message.data), std::string(message.id)});
    });
    EXPECT_TRUE(error.ok()) << error.describe();
  }
  parser.finish();
  return received;
}

std::vector<Received> parseChunks(const std::vector<std::string>& chunks) {
  Parser parser;
  return parseChunks(parser, chunks);
}

std::vector<Received> parseAll(const std::string& stream) { return parseChunks({stream}); }

// Splits `stream` at random offsets; max_piece 1 gives one-byte chunks.
std::vector<std::string> splitRandomly(const std::string& stream, std::mt19937& rng,
                                       size_t max_piece) {
  std::uniform_int_distribution<size_t> size_dist(1, max_piece);
  std::vector<std::string> chunks;
  for (size_t pos = 0; pos < stream.size();) {
    const size_t size = std::min(size_dist(rng), stream.size() - pos);
    chunks.push_back(stream.substr(pos, size));
    pos += size;
  }
  return chunks;
}

TEST(SseParser, LfLineEndings) {
  const auto received = parseAll("data: a\n\ndata: b\n\n");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].data, "a");
  EXPECT_EQ(received[1].data, "b");
}

TEST(SseParser, CrLineEndings) {
  const auto received = parseAll("data: a\r\rdata: b\r\r");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].data, "a");
  EXPECT_EQ(received[1].data, "b");
}

TEST(SseParser, CrlfLineEndings) {
  const auto received = parseAll("data: a\r\ndata: b\r\n\r\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "a\nb");
}

TEST(SseParser, MixedLineEndings) {
  const auto received = parseAll("data: a\rdata: b\ndata: c\r\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "a\nb\nc");
}

TEST(SseParser, CrlfSplitAcrossChunksIsOneLineEnding) {
  const auto received = parseChunks({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "a\nb");
}

TEST(SseParser, CrAtChunkEndEndsLine) {
  const auto received = parseChunks({"data: a\r", "data: b\r", "\r"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "a\nb");
}

TEST(SseParser, CrAtChunkEndSurvivesEmptyChunk) {
  const auto received = parseChunks({"data: a\r", "", "\n\n"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "a");
}

TEST(SseParser, LeadingByteOrderMarkSkipped) {
  const auto received = parseAll(
      "\xEF\xBB\xBF"
      "data: x\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "x");
}

TEST(SseParser, ByteOrderMarkSplitAcrossChunksSkipped) {
  const auto received = parseChunks({"\xEF", "\xBB",
                                     "\xBF"
                                     "da",
                                     "ta: x\n\n"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "x");
}

TEST(SseParser, SecondByteOrderMarkNotSkipped) {
  // The second mark becomes part of the field name, so the field is unknown and ignored.
  const auto received = parseAll(
      "\xEF\xBB\xBF"
      "data: x\n\n"
      "\xEF\xBB\xBF"
      "data: y\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "x");
}

TEST(SseParser, PartialByteOrderMarkKeptAsLineBytes) {
  Parser parser;
  const Error error = parser.feed(
      "\xEF\xBB"
      "a",
      [](const Message&) {});
  EXPECT_TRUE(error.ok());
  EXPECT_EQ(parser.bufferedBytes(), 3u);
}

TEST(SseParser, CommentLinesIgnored) {
  const auto received = parseAll(": ping\n:\n:keep-alive\ndata: x\n: inside\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "x");
}

TEST(SseParser, CommentOnlyBlockNotDispatched) { EXPECT_TRUE(parseAll(": ping\n\n:\n\n").empty()); }

TEST(SseParser, DataLinesJoinedWithNewline) {
  const auto received = parseAll("data: first\ndata: second\ndata: third\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "first\nsecond\nthird");
}

TEST(SseParser, EmptyDataLineDispatchesEmptyMessage) {
  const auto received = parseAll("data:\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "");
}

TEST(SseParser, TwoEmptyDataLinesGiveNewline) {
  const auto received = parseAll("data\ndata\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "\n");
}

TEST(SseParser, FieldWithoutColonHasEmptyValue) {
  const auto received = parseAll("data\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "");
}

TEST(SseParser, OneSpaceAfterColonRemoved) {
  const auto received = parseAll("data:  two spaces\n\ndata:none\n\n");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].data, " two spaces");
  EXPECT_EQ(received[1].data, "none");
}

TEST(SseParser, ColonInsideValueKept) {
  const auto received = parseAll("data: {\"a\":1}\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "{\"a\":1}");
}

TEST(SseParser, EventTypeDefaultsToMessage) {
  const auto received = parseAll("data: x\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].event, "message");
}

TEST(SseParser, EventTypeAppliesToOneBlock) {
  const auto received = parseAll("event: error\ndata: x\n\ndata: y\n\n");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].event, "error");
  EXPECT_EQ(received[1].event, "message");
}

TEST(SseParser, EmptyEventTypeIsMessage) {
  const auto received = parseAll("event\ndata: x\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].event, "message");
}

TEST(SseParser, BlockWithoutDataNotDispatched) {
  EXPECT_TRUE(parseAll("event: ping\n\nretry: 10\n\nid: 3\n\n").empty());
}

TEST(SseParser, EventTypeOfUndispatchedBlockDoesNotLeak) {
  const auto received = parseAll("event: ping\n\ndata: x\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].event, "message");
}

TEST(SseParser, IdAppliesToMessage) {
  const auto received = parseAll("id: 42\ndata: x\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].id, "42");
}

TEST(SseParser, IdOfBlockWithoutDataPersists) {
  Parser parser;
  const auto received = parseChunks(parser, {"data: a\n\nid: 7\n\ndata: b\n\n"});
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].id, "");
  EXPECT_EQ(received[1].id, "7");
  EXPECT_EQ(parser.lastEventId(), "7");
}

TEST(SseParser, EmptyIdResetsLastEventId) {
  const auto received = parseAll("id: 1\ndata: a\n\nid\ndata: b\n\n");
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].id, "1");
  EXPECT_EQ(received[1].id, "");
}

TEST(SseParser, IdContainingNulIgnored) {
  using namespace std::string_literals;
  const auto received = parseAll("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"s);
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[1].id, "1");
}

TEST(SseParser, RetryWithDigitsAccepted) {
  Parser parser;
  parseChunks(parser, {"retry: 3000\n\n"});
  EXPECT_EQ(parser.retryMs(), 3000);
}

TEST(SseParser, RetryWithNonDigitsIgnored) {
  Parser parser;
  parseChunks(parser, {"retry: 1500\n\nretry: 20s\n\nretry: -5\n\nretry:\n\n"});
  EXPECT_EQ(parser.retryMs(), 1500);
}

TEST(SseParser, UnknownFieldIgnored) {
  const auto received = parseAll("foo: bar\ndata: x\nData: y\n\n");
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "x");
}

TEST(SseParser, UnterminatedEventNotDispatchedAtEnd) { EXPECT_TRUE(parseAll("data: x\n").empty()); }

TEST(SseParser, UnterminatedLineNotDispatchedAtEnd) { EXPECT_TRUE(parseAll("data: x").empty()); }

TEST(SseParser, HasPendingEventReportsUnterminatedBlock) {
  Parser parser;
  EXPECT_TRUE(parser.feed("data: x\n", [](const Message&) {}).ok());
  EXPECT_TRUE(parser.hasPendingEvent());
  parser.finish();
  EXPECT_FALSE(parser.hasPendingEvent());
}

TEST(SseParser, FinishStartsNewStreamWithByteOrderMark) {
  Parser parser;
  parseChunks(parser, {"data: partial"});
  const auto received = parseChunks(parser, {"\xEF\xBB\xBF"
                                             "data: y\n\n"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "y");
}

TEST(SseParser, MultiByteCharacterSplitAcrossChunks) {
  // "é" is C3 A9, "👋" is F0 9F 91 8B.
  const auto received = parseChunks({"data: Caf\xC3", "\xA9 \xF0\x9F", "\x91", "\x8B\n\n"});
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].data, "Caf\xC3\xA9 \xF0\x9F\x91\x8B");
}

TEST(SseParser, RandomChunkingGivesSameMessages) {
  const std::string stream =
      "\xEF\xBB\xBF: comment\r\nid: 1\r\nevent: add\r\ndata: {\"a\":\"\xC3\xA9\"}\r\n\r\n"
      "data: x\rdata: y\r\rretry: 250\n\nevent: ping\n\nid: 2\ndata\n\n"
      "data: \xF0\x9F\x91\x8B\ndata:z\n\n: tail\ndata: cut";
  const std::vector<Received> expected = parseAll(stream);
  ASSERT_EQ(expected.size(), 4u);

  std::mt19937 rng(20240611);
  for (int round = 0; round < 300; ++round) {
    const size_t max_piece = round % 3 == 0 ? 1 : 1 + round % 17;
    const auto chunks = splitRandomly(stream, rng, max_piece);
    ASSERT_EQ(parseChunks(chunks), expected) << "round " << round;
  }
}

TEST(SseParser, EventLargerThanLimitRejected) {
  Parser parser(Parser::Options{64});
  const Error error = parser.feed("data: " + std::string(100, 'x') + "\n\n", [](const Message&) {});
  EXPECT_EQ(error.cls, ErrorClass::kEventTooLarge);
}

TEST(SseParser, EventTooLargeMessageNamesLimitAndOption) {
  Parser parser(Parser::Options{64});
  const Error error = parser.feed("data: " + std::string(100, 'x') + "\n\n", [](const Message&) {});
  EXPECT_NE(error.message.find("64 bytes"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("max_event_bytes"), std::string::npos) << error.message;
}

TEST(SseParser, PartialLineLargerThanLimitRejected) {
  Parser parser(Parser::Options{64});
  const Error error = parser.feed("data: " + std::string(100, 'x'), [](const Message&) {});
  EXPECT_EQ(error.cls, ErrorClass::kEventTooLarge);
}

TEST(SseParser, DataLinesAddUpToLimit) {
  Parser parser(Parser::Options{64});
  const std::string line = "data: " + std::string(24, 'x') + "\n";
  const Error error = parser.feed(line + line + line + "\n", [](const Message&) {});
  EXPECT_EQ(error.cls, ErrorClass::kEventTooLarge);
}

TEST(SseParser, EventAtLimitAccepted) {
  Parser parser(Parser::Options{64});
  int count = 0;
  const Error error =
      parser.feed("data: " + std::string(58, 'x') + "\n\n", [&](const Message&) { ++count; });
  EXPECT_TRUE(error.ok()) << error.describe();
  EXPECT_EQ(count, 1);
}

TEST(SseParser, FailureRepeatsUntilReset) {
  Parser parser(Parser::Options{16});
  EXPECT_FALSE(parser.feed(std::string(32, 'x'), [](const Message&) {}).ok());
  EXPECT_EQ(parser.feed("data: a\n\n", [](const Message&) {}).cls, ErrorClass::kEventTooLarge);
  parser.reset();
  int count = 0;
  EXPECT_TRUE(parser.feed("data: a\n\n", [&](const Message&) { ++count; }).ok());
  EXPECT_EQ(count, 1);
}

TEST(SseParser, BufferCapacityStaysBoundedOnLongStream) {
  std::string event =
      "data: {\"index\":1,\"token\":{\"id\":13,\"text\":\"hello\",\"logprob\":-0.5,"
      "\"special\":false},\"generated_text\":null,\"details\":null}\n\n";
  std::string stream;
  for (int i = 0; i < 2000; ++i) stream += event;

  Parser parser;
  size_t messages = 0;
  size_t max_capacity = 0;
  // 10 passes over about 250 KB give 20000 events fed in 4 KiB chunks.
  for (int pass = 0; pass < 10; ++pass) {
    for (size_t pos = 0; pos < stream.size(); pos += 4096) {
      const Error error = parser.feed(std::string_view(stream).substr(pos, 4096),
                                      [&](const Message&) { ++messages; });
      ASSERT_TRUE(error.ok());
      max_capacity = std::max(max_capacity, parser.bufferCapacity());
    }
  }
  EXPECT_EQ(messages, 20000u);
  // Each event is 120 bytes, so the buffers never need more than a few hundred bytes.
  EXPECT_LE(max_capacity, 1024u);
}

}  // namespace
}  // namespace hfchain::sse
