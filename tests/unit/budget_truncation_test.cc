// Prompt truncation of the budget link. The counter takes one token per byte of content plus
// four per message, so every expected result can be worked out by hand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../plugins/budget/text_boundaries.h"
#include "../../plugins/budget/truncation.h"

namespace hfchain::plugins::budget {
namespace {

int64_t countBytes(const Prompt& prompt) {
  if (!prompt.isChat()) return static_cast<int64_t>(prompt.inputs.size());
  int64_t tokens = 0;
  for (const PromptMessage& message : prompt.messages) {
    tokens += 4 + static_cast<int64_t>(message.content.size());
  }
  return tokens;
}

Prompt chat(std::vector<PromptMessage> messages) {
  Prompt prompt;
  prompt.messages = std::move(messages);
  return prompt;
}

// system, then three user/assistant turns: 6 messages of 4 + 10 tokens each, 84 in all.
Prompt conversation() {
  return chat({{"system", "be helpful"},
               {"user", "question 1"},
               {"assistant", "answer   1"},
               {"user", "question 2"},
               {"assistant", "answer   2"},
               {"user", "question 3"}});
}

TEST(TruncatePrompt, FittingPromptIsUnchanged) {
  TruncationResult result = truncatePrompt(conversation(), 84, countBytes);
  EXPECT_TRUE(result.fits);
  EXPECT_EQ(result.tokens, 84);
  EXPECT_TRUE(result.dropped.empty());
  EXPECT_FALSE(result.cut_message);
  EXPECT_EQ(result.prompt.messages, conversation().messages);
}

TEST(TruncatePrompt, DropsOldestTurnsFirst) {
  // 84 tokens, limit 60: dropping two messages (28 tokens) is the fewest that fit.
  TruncationResult result = truncatePrompt(conversation(), 60, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.dropped, (std::vector<size_t>{1, 2}));
  EXPECT_EQ(result.tokens, 56);
  EXPECT_FALSE(result.cut_message);
  std::vector<PromptMessage> expected = {{"system", "be helpful"},
                                         {"user", "question 2"},
                                         {"assistant", "answer   2"},
                                         {"user", "question 3"}};
  EXPECT_EQ(result.prompt.messages, expected);
}

TEST(TruncatePrompt, KeepsSystemAndLastUserMessage) {
  TruncationResult result = truncatePrompt(conversation(), 28, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.dropped, (std::vector<size_t>{1, 2, 3, 4}));
  std::vector<PromptMessage> expected = {{"system", "be helpful"}, {"user", "question 3"}};
  EXPECT_EQ(result.prompt.messages, expected);
}

TEST(TruncatePrompt, CutsLastUserMessageAtSentence) {
  Prompt prompt = chat({{"system", "sys"},
                        {"user", "old"},
                        {"user", "First sentence. Second one! Third? Last question here."}});
  // Without message 1: 7 + 4 + 54 = 65 tokens. Limit 46 leaves 35 bytes for the user text:
  // "Third? Last question here." (26 bytes) is the longest sentence suffix that fits.
  TruncationResult result = truncatePrompt(prompt, 46, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.dropped, (std::vector<size_t>{1}));
  ASSERT_TRUE(result.cut_message);
  EXPECT_EQ(*result.cut_message, 2u);
  EXPECT_EQ(result.cut_level, CutLevel::kSentence);
  ASSERT_EQ(result.prompt.messages.size(), 2u);
  EXPECT_EQ(result.prompt.messages[0].content, "sys");
  EXPECT_EQ(result.prompt.messages[1].content, "Third? Last question here.");
  EXPECT_EQ(result.cut_bytes, 28u);
  EXPECT_EQ(result.tokens, 37);
}

TEST(TruncatePrompt, CutsWordsOfLastSentence) {
  Prompt prompt;
  prompt.inputs = "Intro. one two three four";
  // Only 12 bytes fit; the last sentence "one two three four" (18 bytes) is too long, so
  // words go: "three four" (10 bytes).
  TruncationResult result = truncatePrompt(prompt, 12, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.prompt.inputs, "three four");
  EXPECT_EQ(result.cut_level, CutLevel::kWord);
  ASSERT_TRUE(result.cut_message);
  EXPECT_EQ(*result.cut_message, 0u);
}

TEST(TruncatePrompt, CutsCharactersWithoutSplittingUtf8) {
  Prompt prompt;
  // Six waves (4 bytes each) with no space: only code point cuts remain.
  for (int i = 0; i < 6; ++i) prompt.inputs += "\xF0\x9F\x91\x8B";
  TruncationResult result = truncatePrompt(prompt, 10, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.cut_level, CutLevel::kCharacter);
  EXPECT_EQ(result.prompt.inputs, "\xF0\x9F\x91\x8B\xF0\x9F\x91\x8B");
  EXPECT_EQ(result.cut_bytes, 16u);
}

TEST(TruncatePrompt, RejectsWhenSystemMessagesAloneAreTooLong) {
  Prompt prompt = chat({{"system", "a very long system prompt"}, {"user", "hi"}});
  TruncationResult result = truncatePrompt(prompt, 20, countBytes);
  EXPECT_FALSE(result.fits);
  EXPECT_GT(result.tokens, 20);
}

// Returns the roles of `prompt` joined by spaces.
std::string roles(const Prompt& prompt) {
  std::string out;
  for (const PromptMessage& message : prompt.messages) {
    out += (out.empty() ? "" : " ") + message.role;
  }
  return out;
}

TEST(TruncatePrompt, DropsWholeTurnsSoRolesAlternate) {
  // system, 12 user/assistant pairs and a last user message, 14 tokens each: 364 in all.
  std::vector<PromptMessage> messages = {{"system", "be helpful"}};
  for (int i = 0; i < 12; ++i) {
    messages.push_back({"user", "question " + std::to_string(i % 10)});
    messages.push_back({"assistant", "answer   " + std::to_string(i % 10)});
  }
  messages.push_back({"user", "last quest"});
  // Dropping 5 messages (70 tokens) would be the fewest that fit 294, but it would leave an
  // assistant message first; 3 whole turns are dropped instead.
  TruncationResult result = truncatePrompt(chat(messages), 294, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.dropped, (std::vector<size_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(result.tokens, 280);
  ASSERT_GE(result.prompt.messages.size(), 2u);
  EXPECT_EQ(result.prompt.messages[0].role, "system");
  for (size_t i = 1; i < result.prompt.messages.size(); ++i) {
    EXPECT_EQ(result.prompt.messages[i].role, i % 2 == 1 ? "user" : "assistant") << i;
  }
}

TEST(TruncatePrompt, ToolMessagesGoWithTheirTurn) {
  Prompt prompt = chat({{"system", "sys"},
                        {"assistant", "greeting"},
                        {"user", "call tool"},
                        {"assistant", "calling"},
                        {"tool", "result 42"},
                        {"assistant", "it is 42"},
                        {"user", "and now?"}});
  // 7 + 12 + 13 + 11 + 13 + 12 + 12 = 80 tokens. Dropping the greeting alone leaves 68,
  // over 60, so the whole tool turn goes too.
  TruncationResult result = truncatePrompt(prompt, 60, countBytes);
  ASSERT_TRUE(result.fits);
  EXPECT_EQ(result.dropped, (std::vector<size_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(roles(result.prompt), "system user");

  // A limit that only needs the leading assistant message gone drops only it.
  TruncationResult greeting = truncatePrompt(prompt, 68, countBytes);
  ASSERT_TRUE(greeting.fits);
  EXPECT_EQ(greeting.dropped, (std::vector<size_t>{1}));
  EXPECT_EQ(roles(greeting.prompt), "system user assistant tool assistant user");
}

TEST(TruncatePrompt, NeverLeavesAssistantFirst) {
  // For every limit, the kept chat starts with a user message after the system message.
  std::vector<PromptMessage> messages = {{"system", "s"}};
  for (int i = 0; i < 6; ++i) {
    messages.push_back({"user", std::string(static_cast<size_t>(3 + i), 'u')});
    messages.push_back({"assistant", std::string(static_cast<size_t>(9 - i), 'a')});
  }
  messages.push_back({"user", "last"});
  const int64_t total = countBytes(chat(messages));
  for (int64_t limit = 13; limit <= total; ++limit) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    TruncationResult result = truncatePrompt(chat(messages), limit, countBytes);
    ASSERT_TRUE(result.fits);
    ASSERT_GE(result.prompt.messages.size(), 2u);
    EXPECT_EQ(result.prompt.messages[1].role, "user");
    EXPECT_EQ(result.dropped.size() % 2, 0u);
  }
}

TEST(TextBoundaries, ShortenUtf8CutsOnCodePointStart) {
  EXPECT_EQ(shortenUtf8("short", 10), "short");
  EXPECT_EQ(shortenUtf8("exactly10!", 10), "exactly10!");
  EXPECT_EQ(shortenUtf8("abcdefghijk", 4), "abcd\xE2\x80\xA6");
  // The wave starts at byte 2 and ends at byte 6; a cut at 4 falls inside it.
  EXPECT_EQ(shortenUtf8("ab\xF0\x9F\x91\x8B"
                        "cd",
                        4),
            "ab\xE2\x80\xA6");
}

TEST(TextBoundaries, SentenceStartsAfterPunctuationAndLineBreaks) {
  EXPECT_EQ(sentenceStarts("A b. C d! E\nF"), (std::vector<size_t>{5, 10, 12}));
  EXPECT_EQ(sentenceStarts("v1.2 is out"), (std::vector<size_t>{}));
  EXPECT_EQ(wordStarts("a  b c"), (std::vector<size_t>{3, 5}));
  EXPECT_EQ(codePointStarts("a\xC3\xA9z"), (std::vector<size_t>{1, 3}));
}

}  // namespace
}  // namespace hfchain::plugins::budget
