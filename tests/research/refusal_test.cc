// Wrong task files are refused before anything runs, with a message that names the field:
// each test takes an example file from deploy/examples, breaks one thing, and loads and
// runs it as `tessera simulate` does (common::LoadProtoFile, then RunSimulation, which
// validates the spec and checks its columns against the data file).
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_replace.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::StatusIs;

class RefusalTest : public ::testing::Test {
 protected:
  // The example's text with `from` replaced by `to`, written to a file of its own.
  std::string WriteVariant(const std::string& example, const std::string& from,
                           const std::string& to) {
    absl::StatusOr<std::string> text = common::ReadFile(ExamplePath(example));
    EXPECT_OK(text.status());
    EXPECT_THAT(*text, HasSubstr(from)) << example;
    std::string path = temp_.File(example + ".wrong.textproto");
    EXPECT_OK(common::WriteFileAtomic(path, absl::StrReplaceAll(*text, {{from, to}})));
    return path;
  }

  // Loads the file and runs it over `dataset` with 5 sites, as `tessera simulate` does.
  absl::Status LoadAndSimulate(const std::string& path, const std::string& dataset) {
    v1::TaskSpec spec;
    if (absl::Status s = common::LoadProtoFile(path, &spec); !s.ok()) return s;
    absl::StatusOr<simulation::SimulationResult> result =
        Simulate(spec, dataset, 5, "iid", temp_.File("work"));
    if (!result.ok()) return result.status();
    ADD_FAILURE() << "the task ran: " << v1::TaskState_Name(result->task.state());
    return absl::OkStatus();
  }

  testing::TempDir temp_;
};

TEST_F(RefusalTest, UnknownModelKindNamesTheField) {
  // By name: the parser refuses it, naming the field, the value and the place.
  const std::string path =
      WriteVariant("breast_cancer_logistic", "kind: LOGISTIC_REGRESSION", "kind: PERCEPTRON");
  EXPECT_THAT(LoadAndSimulate(path, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("\"kind\""), HasSubstr("PERCEPTRON"))));
  // By number (an enum value this build does not know, which proto3's text format reads):
  // validation refuses it.
  const std::string numbered =
      WriteVariant("breast_cancer_logistic", "kind: LOGISTIC_REGRESSION", "kind: 42");
  EXPECT_THAT(LoadAndSimulate(numbered, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.kind")));
}

TEST_F(RefusalTest, ColumnMissingFromTheDataNamesTheFieldAndTheFile) {
  const std::string path = WriteVariant("breast_cancer_logistic", "features: \"mean_texture\"",
                                        "features: \"mean_textur\"");
  EXPECT_THAT(LoadAndSimulate(path, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("dataset.features[1]: column 'mean_textur' is not in "),
                             HasSubstr(DataPath("breast_cancer_wisconsin")))));
  // The label and an analytics query column are checked the same way.
  const std::string label =
      WriteVariant("diabetes_linear", "label: \"progression\"", "label: \"outcome\"");
  EXPECT_THAT(LoadAndSimulate(label, "diabetes_progression"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("dataset.label: column 'outcome' is not in ")));
  const std::string query =
      WriteVariant("rotterdam_query", "column: \"nodes\"", "column: \"lymph_nodes\"");
  EXPECT_THAT(LoadAndSimulate(query, "rotterdam_survival"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("analytics.queries[1].column: column 'lymph_nodes' is not in ")));
}

// Cohort rules five simulated sites cannot meet end the simulation at once, naming the field
// (a real federation would wait for more sites; a simulation has no more to wait for).
TEST_F(RefusalTest, CohortRulesTheSitesCannotMeetAreRefusedNotWaitedFor) {
  const std::string threshold = WriteVariant("breast_cancer_logistic", "min_clients: 3",
                                             "min_clients: 3\nsecure_aggregation { threshold: 7 }");
  EXPECT_THAT(LoadAndSimulate(threshold, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("secure_aggregation.threshold: the task needs 7 sites, the "
                                 "simulation has 5")));
  const std::string clients =
      WriteVariant("breast_cancer_logistic", "min_clients: 3", "min_clients: 6");
  EXPECT_THAT(
      LoadAndSimulate(clients, "breast_cancer_wisconsin"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_clients: the task needs 6")));
}

TEST_F(RefusalTest, NegativeLearningRateNamesTheField) {
  const std::string path =
      WriteVariant("breast_cancer_logistic", "learning_rate: 0.3", "learning_rate: -0.3");
  EXPECT_THAT(LoadAndSimulate(path, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("training.learning_rate: must be a finite number > 0")));
}

TEST_F(RefusalTest, EpsilonBudgetWithoutDeltaNamesTheField) {
  const std::string path = WriteVariant("breast_cancer_dp", " delta: 1e-5 }", " }");
  EXPECT_THAT(LoadAndSimulate(path, "breast_cancer_wisconsin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("privacy.delta: required with an epsilon budget")));
}

}  // namespace
}  // namespace tessera::research
