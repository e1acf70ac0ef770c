#include "common/proto_text.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::common {
namespace {

using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::HasSubstr;

// The line numbers asserted below depend on this text's layout.
// clang-format off
constexpr char kTask[] = R"pb(# a comment
name: "demo"
dataset {
  id: "bc"
  features: "a"
  features: "b"
  label: "y"
}
training {
  learning_rate: 0.5
}
rounds: 3
)pb";
// clang-format on

TEST(ParseTextProtoTest, ParsesWithCommentsAndRecordsLines) {
  v1::TaskSpec spec;
  TextLocations where;
  ASSERT_OK(ParseTextProto(kTask, "task.textproto", &spec, &where));
  EXPECT_EQ(spec.name(), "demo");
  EXPECT_EQ(spec.dataset().features_size(), 2);
  EXPECT_EQ(where.LineOf("name"), 2);
  EXPECT_EQ(where.LineOf("dataset.features[1]"), 6);
  EXPECT_EQ(where.LineOf("training.learning_rate"), 10);
  // Unset leaf: the nearest written ancestor.
  EXPECT_EQ(where.LineOf("training.batch_size"), 9);
  EXPECT_EQ(where.LineOf("model.kind"), 0);
}

TEST(ParseTextProtoTest, UnknownFieldNamesFieldAndLine) {
  v1::TaskSpec spec;
  spec.set_name("left over");
  absl::Status st = ParseTextProto("name: \"x\"\nlearnin_rate: 3\n", "t.txt", &spec, nullptr);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.txt:2:")));
  EXPECT_THAT(st.message(), HasSubstr("learnin_rate"));
  EXPECT_EQ(spec.name(), "") << "a refused file must leave the message empty";
}

TEST(ParseTextProtoTest, SyntaxErrorHasLineAndColumn) {
  v1::TaskSpec spec;
  EXPECT_THAT(ParseTextProto("rounds: \"three\"\n", "t.txt", &spec, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.txt:1:")));
}

TEST(LoadProtoFileTest, MissingFileIsNotFound) {
  v1::TaskSpec spec;
  EXPECT_THAT(LoadProtoFile("/nonexistent/task.textproto", &spec),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/task.textproto")));
}

TEST(LoadProtoFileTest, ReadsJsonByExtension) {
  TempDir dir;
  tessera::testing::WriteTestFile(dir.File("t.json"), R"({"name": "j", "rounds": 4})");
  v1::TaskSpec spec;
  ASSERT_OK(LoadProtoFile(dir.File("t.json"), &spec));
  EXPECT_EQ(spec.name(), "j");
  EXPECT_EQ(spec.rounds(), 4u);
  tessera::testing::WriteTestFile(dir.File("bad.json"), R"({"nmae": "j"})");
  EXPECT_THAT(LoadProtoFile(dir.File("bad.json"), &spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.json")));
}

TEST(FieldErrorsToStatusTest, JoinsErrorsWithSourceAndLine) {
  v1::TaskSpec spec;
  TextLocations where;
  ASSERT_OK(ParseTextProto(kTask, "task.textproto", &spec, &where));
  absl::Status st = FieldErrorsToStatus(
      {{"training.learning_rate", "must be > 0"}, {"model", "required"}}, "task.textproto", &where);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("task.textproto:10: training.learning_rate: must be > 0")));
  EXPECT_THAT(st.message(), HasSubstr("task.textproto: model: required"));
  EXPECT_OK(FieldErrorsToStatus({}, "x", &where));
}

}  // namespace
}  // namespace tessera::common
