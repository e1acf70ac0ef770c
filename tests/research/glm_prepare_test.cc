// Data preparation in the task spec (DatasetSpec.prepare) end to end: a CSV with NA cells,
// text categories and a free-text column (tests/research/reference/smoking_nhis_messy.csv,
// written by glm_reference.R) goes through `tessera simulate` — five sites, each preparing
// its own rows, the imputed mean pooled under secure aggregation in round 0 — into an exact
// regression whose coefficients are R's after the same preparation done centrally on the
// pooled training rows (age imputed with the mean of the present training ages, education
// with its most frequent training level, both pooled under secure aggregation in round 0;
// education and sex one-hot against their reference levels), to 1e-6. And the refusals: a missing
// cell the task does not handle, and a level the task does not declare, end the simulation
// naming the column — never the cell.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// `tessera simulate <task> --clients 5 --test-rows <smoking split> <messy csv> --json`.
std::string Simulate(const std::string& task, const std::string& err_path, int* exit_code) {
  CommandOutput run =
      RunCommand(TESSERA_CONSOLE_BIN,
                 {"simulate", task, "--clients", "5", "--test-rows", TestRowsPath("smoking_nhis"),
                  SourcePath("tests/research/reference/smoking_nhis_messy.csv"), "--json"},
                 err_path);
  *exit_code = run.exit_code;
  return run.out;
}

constexpr char kTask[] = R"(
name: "smoking-prepared"
dataset {
  id: "smoking_nhis"
  features: "ban"
  features: "age"
  features: "education=hs_grad"
  features: "education=some_college"
  features: "education=college"
  features: "education=master"
  features: "afam"
  features: "hispanic"
  features: "sex=female"
  label: "smoker"
  prepare { column: "age" missing: IMPUTE_MEAN }
  prepare {
    column: "education"
    levels: ["none", "hs_grad", "some_college", "college", "master"]
    missing: IMPUTE_MODE
  }
  prepare { column: "sex" levels: ["male", "female"] }
}
model { glm { family: BINOMIAL } }
min_clients: 3
)";

class GlmPrepareTest : public ::testing::Test {
 protected:
  // Writes `task` and simulates it; stdout, with the exit code and stderr.
  std::string Run(const std::string& task, int* exit_code, std::string* err) {
    EXPECT_OK(common::WriteFileAtomic(temp_.File("task.textproto"), task));
    const std::string out = Simulate(temp_.File("task.textproto"), temp_.File("stderr"), exit_code);
    *err = common::ReadFile(temp_.File("stderr")).value_or("");
    return out;
  }
  testing::TempDir temp_;
};

TEST_F(GlmPrepareTest, MessyCsvPreparedAtEachSiteFitsAsRAfterTheSamePreparationCentrally) {
  int exit_code = -1;
  std::string err;
  const std::string out = Run(kTask, &exit_code, &err);
  ASSERT_EQ(exit_code, 0) << err;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &json).ok()) << out;
  const auto& got = json.fields().at("coefficients").list_value().values();

  std::ifstream in(SourcePath("tests/research/reference/glm_coefficients.csv"));
  std::string line;
  int compared = 0;
  const std::vector<std::string> fields = {"estimate", "std_error", "statistic",
                                           "p_value",  "ci_low",    "ci_high"};
  while (std::getline(in, line)) {
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (cells.size() != 8 || cells[0] != "smoking_nhis_messy_prepared_binomial") continue;
    const google::protobuf::Struct* c = nullptr;
    for (const google::protobuf::Value& v : got) {
      if (v.struct_value().fields().at("name").string_value() == cells[1]) c = &v.struct_value();
    }
    ASSERT_NE(c, nullptr) << "no coefficient " << cells[1] << " in " << out;
    for (size_t k = 0; k < fields.size(); ++k) {
      double want = 0;
      ASSERT_TRUE(absl::SimpleAtod(cells[k + 2], &want));
      const double value = c->fields().at(fields[k]).number_value();
      EXPECT_LE(std::abs(value - want), (fields[k] == "p_value" ? 1e-5 : 1e-6) * std::abs(want))
          << cells[1] << " " << fields[k] << ": got " << value << ", R gives " << want;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 10);
  EXPECT_EQ(got.size(), 10);
}

TEST_F(GlmPrepareTest, AMissingCellTheTaskDoesNotHandleIsRefusedNamingTheColumn) {
  int exit_code = -1;
  std::string err;
  Run(absl::StrReplaceAll(kTask, {{"prepare { column: \"age\" missing: IMPUTE_MEAN }", ""}}),
      &exit_code, &err);
  EXPECT_NE(exit_code, 0);
  EXPECT_THAT(err, HasSubstr("column 'age'"));
}

TEST_F(GlmPrepareTest, ALevelTheTaskDoesNotDeclareIsRefusedNamingTheColumnNotTheCell) {
  int exit_code = -1;
  std::string err;
  std::string task = absl::StrReplaceAll(
      kTask, {{", \"master\"]", "]"}, {"  features: \"education=master\"\n", ""}});
  Run(task, &exit_code, &err);
  EXPECT_NE(exit_code, 0);
  // The coordinator's reason (what the site declined with) names the column only.
  const size_t reason = err.rfind("TASK_FAILED");
  ASSERT_NE(reason, std::string::npos) << err;
  const std::string why = err.substr(reason);
  EXPECT_THAT(why, HasSubstr("column 'education'"));
  EXPECT_THAT(why, HasSubstr("declared levels"));
  EXPECT_THAT(why, Not(HasSubstr("master")));
}

}  // namespace
}  // namespace tessera::research
