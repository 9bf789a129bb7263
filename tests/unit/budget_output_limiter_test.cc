// The budget link's output limit, with the Llama 3 tokenizer and with simple counters.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "../../plugins/budget/output_limiter.h"
#include "hfchain/tokenizer.h"

namespace hfchain::plugins::budget {
namespace {

const std::filesystem::path kLlama3 = HFCHAIN_TOKENIZER_CACHE_DIR "/llama3/tokenizer.json";

// "ok 👋👋👋👋👋👋 done", one code point per piece, as an upstream that streams characters.
std::vector<std::string> wavePieces() {
  std::vector<std::string> pieces = {"o", "k", " "};
  for (int i = 0; i < 6; ++i) pieces.push_back("\xF0\x9F\x91\x8B");
  for (const char* piece : {" ", "d", "o", "n", "e"}) pieces.push_back(piece);
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += piece;
  return out;
}

TEST(OutputLimiter, Llama3CutIsCleanPrefixForEveryLimit) {
  if (!std::filesystem::exists(kLlama3)) {
    GTEST_SKIP() << "tokenizer files missing in " << kLlama3.parent_path().string()
                 << "; run scripts/fetch-tokenizers.sh";
  }
  TokenizerLoadResult loaded = Tokenizer::load(kLlama3);
  ASSERT_TRUE(loaded.ok()) << loaded.error.message;
  const Tokenizer& tokenizer = *loaded.tokenizer;
  auto count = [&](std::string_view text) {
    return static_cast<int64_t>(tokenizer.count(text, false));
  };
  const std::vector<std::string> pieces = wavePieces();
  const std::string full = join(pieces);
  ASSERT_GT(tokenizer.count("\xF0\x9F\x91\x8B", false), 1u) << "the wave must span tokens";

  for (int64_t limit = 1; limit <= 12; ++limit) {
    OutputLimiter limiter(limit, count);
    std::string delivered;
    size_t next_piece = 0;
    for (; next_piece < pieces.size() && !limiter.reached(); ++next_piece) {
      delivered += pieces[next_piece].substr(0, limiter.addText(pieces[next_piece]));
    }
    SCOPED_TRACE("limit " + std::to_string(limit) + ", delivered \"" + delivered + "\"");
    EXPECT_EQ(delivered, limiter.text());
    EXPECT_EQ(full.compare(0, delivered.size(), delivered), 0);
    EXPECT_TRUE(Tokenizer::isValidUtf8(delivered));
    EXPECT_EQ(delivered.find("\xEF\xBF\xBD"), std::string::npos);
    EXPECT_LE(count(delivered), limit);
    EXPECT_EQ(limiter.tokens(), count(delivered));
    if (delivered.size() < full.size()) {
      EXPECT_TRUE(limiter.reached());
      // The cut is the longest prefix that fits: the piece it stopped at would not.
      EXPECT_GT(count(delivered + pieces[next_piece - 1]), limit);
    }
  }
}

TEST(OutputLimiter, PieceIsCutOnCodePointStart) {
  // One token per byte: "ab" fits a limit of 3 and the wave's first byte would too, but
  // the cut may not split the wave.
  OutputLimiter limiter(3, [](std::string_view text) { return static_cast<int64_t>(text.size()); });
  EXPECT_EQ(limiter.addText("ab\xF0\x9F\x91\x8B"), 2u);
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(limiter.text(), "ab");
  EXPECT_EQ(limiter.tokens(), 2);
  EXPECT_EQ(limiter.addText("c"), 0u);
}

TEST(OutputLimiter, RecountsOnlyNearTheLimit) {
  // An estimate of one token per four bytes, over 40,000 one-byte pieces.
  auto count = [](std::string_view text) { return static_cast<int64_t>((text.size() + 3) / 4); };
  OutputLimiter limiter(5000, count);
  size_t delivered = 0;
  for (int i = 0; i < 40000 && !limiter.reached(); ++i) delivered += limiter.addText("x");
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(delivered, 20000u);
  EXPECT_EQ(limiter.tokens(), 5000);
  // A recount per piece would be 20,000; the bound lets most pieces through uncounted.
  EXPECT_LT(limiter.recounts(), 200) << limiter.recounts();
}

TEST(OutputLimiter, NoRecountBelowByteBound) {
  int64_t calls = 0;
  OutputLimiter limiter(100, [&](std::string_view text) {
    ++calls;
    return static_cast<int64_t>(text.size());
  });
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limiter.addText("a"), 1u);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(limiter.reached());
  EXPECT_EQ(limiter.addText("b"), 0u);
  EXPECT_TRUE(limiter.reached());
}

TEST(OutputLimiter, EmptyTokenEventCountsAsToken) {
  OutputLimiter limiter(3, [](std::string_view) -> int64_t { return 0; });
  EXPECT_EQ(limiter.addTokenEvent("Hi"), 2u);
  EXPECT_EQ(limiter.addTokenEvent(""), 0u);
  EXPECT_FALSE(limiter.reached());
  EXPECT_EQ(limiter.addTokenEvent("\xF0\x9F\x91\x8B"), 4u);
  EXPECT_FALSE(limiter.reached());
  EXPECT_EQ(limiter.addTokenEvent("!"), 0u);
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(limiter.text(), "Hi\xF0\x9F\x91\x8B");
  EXPECT_EQ(limiter.tokens(), 3);
}

// One token per byte, so every expected cut can be worked out by hand.
int64_t oneTokenPerByte(std::string_view text) { return static_cast<int64_t>(text.size()); }

TEST(OutputLimiter, WholeAnswerEventIsCutByText) {
  // A non-streamed response arrives as one token event with all its text.
  OutputLimiter limiter(5, oneTokenPerByte);
  EXPECT_EQ(limiter.addTokenEvent("one two three"), 5u);
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(limiter.text(), "one t");
  EXPECT_EQ(limiter.tokens(), 5);
}

TEST(OutputLimiter, MultiTokenEventIsChargedItsTokens) {
  OutputLimiter limiter(10, oneTokenPerByte);
  EXPECT_EQ(limiter.addTokenEvent("a"), 1u);
  EXPECT_EQ(limiter.addTokenEvent("bcdef"), 5u);
  EXPECT_FALSE(limiter.reached());
  EXPECT_EQ(limiter.tokens(), 6);
  // Four tokens left: the next five-token event is cut to four bytes.
  EXPECT_EQ(limiter.addTokenEvent("ghijk"), 4u);
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(limiter.text(), "abcdefghij");
  EXPECT_EQ(limiter.tokens(), 10);
}

TEST(OutputLimiter, HeldBackEventsCoverTheCharacterAfterThem) {
  // A wave spans three tokens: two empty events, then one event with its four bytes. The
  // byte bound allows that event up to three tokens, so it is charged one more, not three.
  OutputLimiter limiter(3, [](std::string_view text) -> int64_t {
    return text == "\xF0\x9F\x91\x8B" ? 3 : static_cast<int64_t>(text.size());
  });
  EXPECT_EQ(limiter.addTokenEvent(""), 0u);
  EXPECT_EQ(limiter.addTokenEvent(""), 0u);
  EXPECT_EQ(limiter.addTokenEvent("\xF0\x9F\x91\x8B"), 4u);
  EXPECT_FALSE(limiter.reached());
  EXPECT_EQ(limiter.tokens(), 3);
}

TEST(OutputLimiter, MultiTokenCutKeepsCodePointsWhole) {
  OutputLimiter limiter(6, oneTokenPerByte);
  // "ab" then a wave (4 bytes): 6 bytes fit, the second wave does not.
  EXPECT_EQ(limiter.addTokenEvent("ab\xF0\x9F\x91\x8B\xF0\x9F\x91\x8B"), 6u);
  EXPECT_TRUE(limiter.reached());
  EXPECT_EQ(limiter.text(), "ab\xF0\x9F\x91\x8B");
}

TEST(OutputLimiter, LimitNearInt64MaxDoesNotOverflow) {
  OutputLimiter limiter(std::numeric_limits<int64_t>::max(), oneTokenPerByte);
  EXPECT_EQ(limiter.addText("some text"), 9u);
  EXPECT_EQ(limiter.addTokenEvent("more text"), 9u);
  EXPECT_FALSE(limiter.reached());
}

}  // namespace
}  // namespace hfchain::plugins::budget
