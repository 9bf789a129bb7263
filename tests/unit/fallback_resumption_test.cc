// Trimming of repeated text when the fallback link resumes a broken stream.
#include <gtest/gtest.h>

// The plugin is a MODULE library that tests cannot link, so the source under test is
// compiled into this test.
#include "../../plugins/fallback/resumption.cc"

namespace hfchain::plugins::fallback {
namespace {

// Feeds `pieces` and returns everything the trimmer let through, including the end.
std::string run(ContinuationTrimmer& trimmer, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += trimmer.feed(piece);
  return out + trimmer.finish();
}

TEST(ContinuationTrimmer, DropsFullRestart) {
  ContinuationTrimmer trimmer("The answer is", 8);
  EXPECT_EQ(run(trimmer, {"The", " answer", " is", " 42."}), " 42.");
  EXPECT_EQ(trimmer.trimmed(), 13u);
}

TEST(ContinuationTrimmer, DropsRepeatedEnd) {
  ContinuationTrimmer trimmer("Once upon a time there", 8);
  EXPECT_EQ(run(trimmer, {" time", " there", " was", " a king"}), " was a king");
  EXPECT_EQ(trimmer.trimmed(), 11u);
}

TEST(ContinuationTrimmer, KeepsShortCoincidence) {
  ContinuationTrimmer trimmer("It is", 8);
  // " is" repeats the last three characters, fewer than 8, and is not a restart.
  EXPECT_EQ(run(trimmer, {" is", " red"}), " is red");
}

TEST(ContinuationTrimmer, PassesNewText) {
  ContinuationTrimmer trimmer("Paris is the", 8);
  EXPECT_EQ(trimmer.feed(" capital"), " capital");
  EXPECT_EQ(trimmer.feed(" of France."), " of France.");
  EXPECT_EQ(trimmer.finish(), "");
  EXPECT_EQ(trimmer.trimmed(), 0u);
}

TEST(ContinuationTrimmer, HoldsTextWhileItCouldRepeat) {
  ContinuationTrimmer trimmer("The answer is", 8);
  EXPECT_EQ(trimmer.feed("The"), "");
  EXPECT_EQ(trimmer.feed(" ans"), "");
  EXPECT_EQ(trimmer.feed("wer was"), "The answer was");
}

TEST(ContinuationTrimmer, RestartThatStopsEarlyIsDropped) {
  ContinuationTrimmer trimmer("The answer is", 8);
  EXPECT_EQ(trimmer.feed("The ans"), "");
  EXPECT_EQ(trimmer.finish(), "");
}

TEST(ContinuationTrimmer, EmptyDeliveredPassesAll) {
  ContinuationTrimmer trimmer("", 8);
  EXPECT_EQ(run(trimmer, {"a", "b"}), "ab");
}

}  // namespace
}  // namespace hfchain::plugins::fallback
