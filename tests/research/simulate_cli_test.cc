// The interface the checks rely on: `tessera simulate TASK --clients N --partition iid
// --test-rows ROWS.txt DATA.csv --json` prints one JSON object on stdout (logs go to
// stderr) whose "final" field maps each metric name to its value on the test rows, the
// same values RunSimulation gives; a metric the cohort cannot define is null. And the
// partitions that could make a simulation meaningless: a by-column partition on a
// continuous column is refused; by-quantile bins it.
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::HasSubstr;

using Output = CommandOutput;

// Runs the console with `args`, stdout captured, stderr into `err_path`.
Output RunConsole(const std::vector<std::string>& args, const std::string& err_path) {
  return RunCommand(TESSERA_CONSOLE_BIN, args, err_path);
}

struct Case {
  std::string example, dataset;
  std::vector<std::string> metrics;  // names "final" must hold
};

// Short names in test listings (ctest shows GetParam()).
void PrintTo(const Case& c, std::ostream* os) { *os << c.example; }

class SimulateJsonTest : public ::testing::TestWithParam<Case> {
 protected:
  testing::TempDir temp_;
};

TEST_P(SimulateJsonTest, PrintsOneJsonObjectWhoseFinalHoldsTheMetrics) {
  const Case& c = GetParam();
  const Output run =
      RunConsole({"simulate", ExamplePath(c.example), "--clients", "5", "--partition", "iid",
                  "--test-rows", TestRowsPath(c.dataset), DataPath(c.dataset), "--json"},
                 temp_.File("stderr"));
  ASSERT_EQ(run.exit_code, 0) << common::ReadFile(temp_.File("stderr")).value_or("");
  // The whole of stdout must parse as one JSON object: any other line would break it.
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  ASSERT_TRUE(json.fields().contains("final")) << run.out;
  const google::protobuf::Struct& final = json.fields().at("final").struct_value();
  EXPECT_EQ(json.fields().at("state").string_value(), "TASK_COMPLETED");

  // The same task through the library: the same numbers, to the last bit (the output
  // has 17 significant digits, and the run is deterministic).
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample(c.example));
  ASSERT_OK_AND_ASSIGN(simulation::SimulationResult direct,
                       Simulate(spec, c.dataset, 5, "iid", temp_.File("direct")));
  for (const std::string& name : c.metrics) {
    ASSERT_TRUE(final.fields().contains(name)) << name << " missing: " << run.out;
    const google::protobuf::Value& v = final.fields().at(name);
    ASSERT_EQ(v.kind_case(), google::protobuf::Value::kNumberValue) << name;
    EXPECT_EQ(v.number_value(), direct.final_metrics.at(name)) << name;
  }
  EXPECT_EQ(json.fields().at("rounds").list_value().values_size(),
            static_cast<int>(direct.rounds.size()));
}

INSTANTIATE_TEST_SUITE_P(
    Examples, SimulateJsonTest,
    ::testing::Values(
        Case{"breast_cancer_logistic", "breast_cancer_wisconsin", {"accuracy", "auc", "log_loss"}},
        Case{"digits_softmax", "digits", {"accuracy", "log_loss", "macro_f1"}},
        // Also: an MLP trains to the same bits in another process (another heap layout).
        Case{"digits_mlp", "digits", {"accuracy", "log_loss", "macro_f1"}},
        Case{"diabetes_linear", "diabetes_progression", {"rmse", "r2"}},
        Case{"rotterdam_cox", "rotterdam_survival", {"c_index"}}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.example; });

TEST(SimulateJsonNullTest, UndefinedMetricIsNull) {
  // Test rows of one class only: the AUC is undefined (NaN) and must print as null, with
  // the JSON still valid.
  testing::TempDir temp;
  const std::string rows = temp.File("benign_rows.txt");
  {
    absl::StatusOr<std::string> csv = common::ReadFile(DataPath("breast_cancer_wisconsin"));
    ASSERT_OK(csv.status());
    std::string list;
    int row = -1, taken = 0;
    for (size_t start = 0, end; (end = csv->find('\n', start)) != std::string::npos && taken < 60;
         start = end + 1, ++row) {
      if (row >= 0 && csv->compare(end - 2, 2, ",0") == 0) {
        absl::StrAppend(&list, row, "\n");
        ++taken;
      }
    }
    ASSERT_EQ(taken, 60);
    ASSERT_OK(common::WriteFileAtomic(rows, list));
  }
  const Output run =
      RunConsole({"simulate", ExamplePath("breast_cancer_logistic"), "--clients", "5",
                  "--test-rows", rows, DataPath("breast_cancer_wisconsin"), "--json"},
                 temp.File("stderr"));
  ASSERT_EQ(run.exit_code, 0) << common::ReadFile(temp.File("stderr")).value_or("");
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  const google::protobuf::Struct& final = json.fields().at("final").struct_value();
  ASSERT_TRUE(final.fields().contains("auc")) << run.out;
  EXPECT_EQ(final.fields().at("auc").kind_case(), google::protobuf::Value::kNullValue);
  EXPECT_EQ(final.fields().at("accuracy").kind_case(), google::protobuf::Value::kNumberValue);
  EXPECT_THAT(run.out, HasSubstr("\"auc\": null"));
}

// The interface check of the privacy issue: a training task whose
// secure_aggregation.threshold is 3, simulated with 5 sites, does not complete — 3 of 5 is
// below floor(2n/3) + 1 = 4, the threshold at which one colluding site and a cheating
// coordinator can no longer unmask a site by a split view (tests/attack/
// split_view_attack_test.cc) — and the reason names the rule. Nothing is released.
TEST(SimulateThresholdAttack, ThreeOfFiveDoesNotCompleteAndSaysWhy) {
  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("breast_cancer_logistic"));
  spec.mutable_secure_aggregation()->set_threshold(3);
  const std::string task = temp.File("three_of_five.textproto");
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(spec, &text));
  ASSERT_OK(common::WriteFileAtomic(task, text));
  const Output run = RunConsole(
      {"simulate", task, "--clients", "5", "--test-rows", TestRowsPath("breast_cancer_wisconsin"),
       DataPath("breast_cancer_wisconsin"), "--json"},
      temp.File("stderr"));
  EXPECT_NE(run.exit_code, 0) << run.out;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  EXPECT_EQ(json.fields().at("state").string_value(), "TASK_FAILED");
  EXPECT_THAT(json.fields().at("reason").string_value(),
              HasSubstr("secure_aggregation.threshold 3 is below 4 = floor(2n/3) + 1"));
  EXPECT_EQ(json.fields().at("rounds").list_value().values_size(), 0) << run.out;
  EXPECT_TRUE(json.fields().at("final").struct_value().fields().empty()) << run.out;
}

// A by-column partition on a continuous column (the diabetes file's age: dozens of
// values) is refused before anything runs, naming the column, its count and the way out;
// by-quantile on the same column runs, with the sites it asked for.
TEST(SimulatePartitionTest, ContinuousColumnIsRefusedByColumnAndBinnedByQuantile) {
  testing::TempDir temp;
  const std::string example = ExamplePath("diabetes_linear");
  const Output refused = RunConsole(
      {"simulate", example, "--clients", "0", "--partition", "by-column:age", "--test-rows",
       TestRowsPath("diabetes_progression"), DataPath("diabetes_progression"), "--json"},
      temp.File("refused.stderr"));
  EXPECT_NE(refused.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::string why, common::ReadFile(temp.File("refused.stderr")));
  EXPECT_THAT(why, HasSubstr("column 'age' has"));
  EXPECT_THAT(why, HasSubstr("by-quantile:age:K"));

  const Output binned = RunConsole(
      {"simulate", example, "--clients", "0", "--partition", "by-quantile:age:4", "--test-rows",
       TestRowsPath("diabetes_progression"), DataPath("diabetes_progression"), "--json"},
      temp.File("binned.stderr"));
  EXPECT_EQ(binned.exit_code, 0) << binned.out;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(binned.out, &json).ok()) << binned.out;
  EXPECT_EQ(json.fields().at("clients").number_value(), 4);
  EXPECT_EQ(json.fields().at("state").string_value(), "TASK_COMPLETED");

  const Output bad_flag =
      RunConsole({"simulate", example, "--clients", "0", "--partition", "by-column:sex",
                  "--max-sites", "0", DataPath("diabetes_progression")},
                 temp.File("flag.stderr"));
  EXPECT_NE(bad_flag.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::string flag_why, common::ReadFile(temp.File("flag.stderr")));
  EXPECT_THAT(flag_why, HasSubstr("--max-sites"));
}

// A CSV with a text column and NA cells in columns the task does not use simulates exactly
// as the same file without them; a task that uses the NA column is refused before anything
// runs, naming the column.
TEST(SimulateCellsTest, TextAndNaInUnusedColumnsChangeNothingAndAUsedOneIsNamed) {
  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(std::string csv, common::ReadFile(DataPath("breast_cancer_wisconsin")));
  std::string with_notes;
  int line = 0;
  for (absl::string_view row : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&with_notes, row,
                    line == 0        ? ",notes,spare"
                    : line % 7 == 0  ? ",seen twice,NA"
                    : line % 11 == 0 ? ",,"
                                     : ",ok,1",
                    "\n");
    ++line;
  }
  const std::string noted = temp.File("noted.csv");
  ASSERT_OK(common::WriteFileAtomic(noted, with_notes));
  const std::string example = ExamplePath("breast_cancer_logistic");
  const std::vector<std::string> common_args = {"--clients", "3", "--test-rows",
                                                TestRowsPath("breast_cancer_wisconsin")};
  auto run = [&](const std::string& task, const std::string& data, const std::string& err) {
    std::vector<std::string> args = {"simulate", task};
    args.insert(args.end(), common_args.begin(), common_args.end());
    args.push_back(data);
    args.push_back("--json");
    return RunConsole(args, temp.File(err));
  };
  const Output plain = run(example, DataPath("breast_cancer_wisconsin"), "plain.stderr");
  const Output with = run(example, noted, "noted.stderr");
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  ASSERT_EQ(with.exit_code, 0) << with.out;
  google::protobuf::Struct a, b;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(plain.out, &a).ok()) << plain.out;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(with.out, &b).ok()) << with.out;
  EXPECT_EQ(a.fields().at("final").DebugString(), b.fields().at("final").DebugString());

  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExample("breast_cancer_logistic"));
  spec.mutable_dataset()->add_features("spare");
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(spec, &text));
  const std::string uses_spare = temp.File("uses_spare.textproto");
  ASSERT_OK(common::WriteFileAtomic(uses_spare, text));
  const Output refused = run(uses_spare, noted, "refused.stderr");
  EXPECT_NE(refused.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::string why, common::ReadFile(temp.File("refused.stderr")));
  EXPECT_THAT(why, HasSubstr("column 'spare'"));
  EXPECT_THAT(why, HasSubstr("not numbers"));
}

// When the cohort rules cannot be met (one of the three sites the task needs cannot use
// its data: a label of 2 for a logistic regression), the simulation stops at once with the
// reason, naming the site; it does not wait for anything.
TEST(SimulateCohortTest, ASiteThatCannotTakePartStopsTheRunNamingIt) {
  testing::TempDir temp;
  ASSERT_OK_AND_ASSIGN(std::string csv, common::ReadFile(DataPath("breast_cancer_wisconsin")));
  std::vector<std::string> rows = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_GT(rows.size(), 5u);
  rows[4] = rows[4].substr(0, rows[4].rfind(',')) + ",2";  // data row 3: label 2
  const std::string bad = temp.File("bad_label.csv");
  ASSERT_OK(common::WriteFileAtomic(bad, absl::StrJoin(rows, "\n") + "\n"));
  const absl::Time start = absl::Now();
  const Output run = RunConsole(
      {"simulate", ExamplePath("breast_cancer_logistic"), "--clients", "3", bad, "--json"},
      temp.File("stderr"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  EXPECT_NE(run.exit_code, 0) << run.out;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  EXPECT_EQ(json.fields().at("state").string_value(), "TASK_FAILED");
  EXPECT_THAT(json.fields().at("reason").string_value(), HasSubstr("site-0"));
  EXPECT_THAT(json.fields().at("reason").string_value(), HasSubstr("declined DATA_ERROR"));
  EXPECT_THAT(json.fields().at("reason").string_value(), HasSubstr("3 needed"));
}

}  // namespace
}  // namespace tessera::research
