#include "common/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::common {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FlagParserTest : public ::testing::Test {
 protected:
  FlagParserTest() : parser_("prog cmd [flags] FILE", "Does things.") {
    parser_.AddString("name", &name_, "a name");
    parser_.AddUint("count", &count_, "a count");
    parser_.AddBool("json", &json_, "print JSON");
  }
  FlagParser parser_;
  std::string name_ = "default";
  uint64_t count_ = 7;
  bool json_ = false;
};

TEST_F(FlagParserTest, ParsesBothValueFormsAndPositionals) {
  ASSERT_OK_AND_ASSIGN(auto pos, parser_.Parse({"--name=x", "a.txt", "--count", "12", "--json"}));
  EXPECT_THAT(pos, ElementsAre("a.txt"));
  EXPECT_EQ(name_, "x");
  EXPECT_EQ(count_, 12u);
  EXPECT_TRUE(json_);
}

TEST_F(FlagParserTest, KeepsDefaultsWhenAbsent) {
  ASSERT_OK_AND_ASSIGN(auto pos, parser_.Parse({}));
  EXPECT_TRUE(pos.empty());
  EXPECT_EQ(name_, "default");
  EXPECT_EQ(count_, 7u);
  EXPECT_FALSE(json_);
}

TEST_F(FlagParserTest, DoubleDashEndsFlags) {
  ASSERT_OK_AND_ASSIGN(auto pos, parser_.Parse({"--", "--name=x"}));
  EXPECT_THAT(pos, ElementsAre("--name=x"));
  EXPECT_EQ(name_, "default");
}

TEST_F(FlagParserTest, UnknownFlagIsNamed) {
  EXPECT_THAT(parser_.Parse({"--nmae=x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--nmae")));
}

TEST_F(FlagParserTest, MissingValueIsNamed) {
  EXPECT_THAT(parser_.Parse({"--name"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--name needs a value")));
}

TEST_F(FlagParserTest, BadNumberIsNamed) {
  EXPECT_THAT(parser_.Parse({"--count=-3"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--count")));
  EXPECT_THAT(parser_.Parse({"--json=maybe"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--json")));
}

TEST_F(FlagParserTest, RequiredFlagMissingUnlessHelp) {
  parser_.Require("name");
  EXPECT_THAT(parser_.Parse({"file"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--name")));
  FlagParser again("prog", "x");
  std::string v;
  again.AddString("name", &v, "n");
  again.Require("name");
  ASSERT_OK(again.Parse({"--help"}));
  EXPECT_TRUE(again.help_requested());
  EXPECT_THAT(again.Help(), HasSubstr("--name=STRING"));
  EXPECT_THAT(again.Help(), HasSubstr("(required)"));
}

}  // namespace
}  // namespace tessera::common
