// Issue 13, "Validation and early stopping": the round a federation selects on its sites'
// validation rows is the round a validation curve computed centrally picks — from every
// round's checkpoint and the validation rows of all sites pooled — and the task's reported
// metrics are that round's model on the test rows, computed centrally too.
//
// The central side uses none of the federation's evaluation code: it reads each site's file
// as the simulator wrote it, holds out the rows proto::ValidationMask names (the split's
// definition), standardises with the pooled statistics, predicts with the checkpoint and
// takes the mean log-loss itself.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/model.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/validation_split.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::HasSubstr;

constexpr char kExample[] = "breast_cancer_early_stopping";
constexpr char kDataset[] = "breast_cancer_wisconsin";
constexpr uint32_t kSites = 5;

// The rows of `path` (a site's file) inside or outside the task's validation split, in
// model form and standardised as the task's round 0 pooled them.
client::Dataset Rows(const v1::TaskRecord& task, const std::string& path, bool validation,
                     bool whole_file) {
  absl::StatusOr<client::CsvTable> table = client::LoadCsv(path);
  EXPECT_TRUE(table.ok()) << table.status();
  const v1::TaskSpec& spec = task.spec();
  const std::vector<bool> mask =
      proto::ValidationMask(table->num_rows, spec.training().validation_fraction(), spec.seed());
  const client::CsvTable part =
      whole_file ? *table : client::SelectTableRows(*table, mask, validation);
  absl::StatusOr<client::Dataset> data = client::SelectColumns(
      part, {spec.dataset().features().begin(), spec.dataset().features().end()},
      spec.dataset().label(), path);
  EXPECT_TRUE(data.ok()) << data.status();
  const v1::Standardization& s = task.standardization();
  const std::vector<double> mean(s.mean().begin(), s.mean().end());
  const std::vector<double> stddev(s.stddev().begin(), s.stddev().end());
  EXPECT_TRUE(client::Standardize(mean, stddev, &*data).ok());
  return *std::move(data);
}

// The mean log-loss of `params` over `rows` pooled (probabilities clipped to 1e-15, as
// scikit-learn's log_loss).
double PooledLogLoss(const client::Model& model, const std::vector<float>& params,
                     const std::vector<client::Dataset>& rows) {
  double sum = 0;
  size_t n = 0;
  for (const client::Dataset& d : rows) {
    std::vector<double> p(d.num_rows);
    model.Predict(params, d, p);
    for (size_t r = 0; r < d.num_rows; ++r) {
      const double q = std::clamp(d.y[r] == 1 ? p[r] : 1 - p[r], 1e-15, 1 - 1e-15);
      sum -= std::log(q);
    }
    n += d.num_rows;
  }
  return sum / static_cast<double>(n);
}

// Early stopping computed from the central curve: `best` is the argmin of the curve over
// the evaluated rounds so far, and training stops after the evaluated round `stopped_after`
// once `patience` evaluated rounds followed it (0 if it never does).
struct CentralPick {
  uint32_t best = 0;
  uint32_t stopped_after = 0;
};
CentralPick PickCentrally(const std::map<uint32_t, double>& central,
                          const std::vector<uint32_t>& evaluated, uint32_t patience) {
  CentralPick pick;
  for (uint32_t r : evaluated) {
    if (pick.best == 0 || central.at(r) < central.at(pick.best)) pick.best = r;
    if (r - pick.best >= patience) {
      pick.stopped_after = r;
      break;
    }
  }
  return pick;
}

TEST(EarlyStoppingTest, TheSelectedRoundIsTheArgminOfTheCentralValidationCurve) {
  testing::TempDir temp;
  absl::StatusOr<v1::TaskSpec> spec = LoadExample(kExample);
  ASSERT_TRUE(spec.ok()) << spec.status();
  simulation::SimulationOptions options;
  options.spec = *spec;
  options.data_csv = DataPath(kDataset);
  options.test_rows_file = TestRowsPath(kDataset);
  options.num_sites = kSites;
  options.work_dir = temp.File("federation");
  options.keep_checkpoints = true;
  absl::StatusOr<simulation::SimulationResult> result = simulation::RunSimulation(options);
  ASSERT_TRUE(result.ok()) << result.status();
  Report(kExample, *result);
  const v1::TaskRecord& task = result->task;
  ASSERT_EQ(task.state(), v1::TASK_COMPLETED) << task.state_reason();
  const auto last = static_cast<uint32_t>(task.last_committed_round());
  ASSERT_EQ(result->checkpoints.size(), last + 1);
  // Early stopping ended it well before its 100 rounds.
  EXPECT_LT(last, task.spec().rounds());
  EXPECT_THAT(task.state_reason(), HasSubstr("early stopping after round"));

  // The central validation curve: every round's checkpoint on all sites' validation rows.
  absl::StatusOr<std::unique_ptr<client::Model>> model =
      client::MakeModel(task.spec().model(), task.spec().dataset().features_size());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<client::Dataset> validation, test;
  size_t validation_rows = 0;
  for (uint32_t k = 1; k <= kSites; ++k) {
    const std::string dir = absl::StrFormat("%s/site-%02d", options.work_dir, k);
    validation.push_back(Rows(task, dir + "/train.csv", /*validation=*/true, false));
    test.push_back(Rows(task, dir + "/test.csv", false, /*whole_file=*/true));
    validation_rows += validation.back().num_rows;
    EXPECT_EQ(validation.back().num_rows, result->site_validation_rows[k - 1]);
  }
  ASSERT_GT(validation_rows, 50u);
  std::map<uint32_t, double> central;
  for (uint32_t r = 1; r <= last; ++r) {
    central[r] = PooledLogLoss(**model, result->checkpoints[r], validation);
  }

  // Every round the federation evaluated has the central value (secure sums are exact to
  // the encoding's resolution), and only the last round, whose evaluation would have come
  // with the next round's fit, is missing.
  std::vector<uint32_t> evaluated;
  for (const v1::RoundRecord& r : result->rounds) {
    if (r.round() == 0) continue;
    const std::map<std::string, double> m = Metrics(r);
    if (!m.contains("loss")) continue;
    evaluated.push_back(r.round());
    EXPECT_NEAR(m.at("loss"), central[r.round()], 1e-6) << "round " << r.round();
    EXPECT_EQ(m.at("num_examples"), static_cast<double>(validation_rows)) << r.round();
  }
  ASSERT_FALSE(evaluated.empty());
  EXPECT_EQ(evaluated.back(), last - 1);
  EXPECT_EQ(evaluated.size(), last - 1);

  // The round in flight when training stopped (one session a round) is the last committed.
  const auto [best, stopped_after] =
      PickCentrally(central, evaluated, task.spec().training().early_stopping().patience());
  std::printf("[research] central validation curve:");
  for (const auto& [r, v] : central) std::printf(" %u:%.5f", r, v);
  std::printf("\n[research] central pick round %u, federation selected round %u\n", best,
              task.selected_round());
  EXPECT_EQ(task.selected_round(), best);
  EXPECT_EQ(stopped_after + 1, last);
  // Not a curve that only falls: the selection had something to do.
  EXPECT_LT(best, evaluated.back());

  // The reported metrics: the selected round's model on the test rows, once.
  const double test_loss = PooledLogLoss(**model, result->checkpoints[best], test);
  ASSERT_TRUE(result->final_metrics.contains("log_loss"));
  EXPECT_NEAR(result->final_metrics.at("log_loss"), test_loss, 1e-6);
  EXPECT_EQ(result->final_metrics.at("num_examples"), 114);
  EXPECT_NE(test_loss, PooledLogLoss(**model, result->checkpoints[last], test))
      << "the last round's model would give the same figure: the test shows nothing";
  EXPECT_EQ(task.test_participants_size(), static_cast<int>(kSites));
}

// `tessera simulate --json` says which round was selected and why, and "final" is its test
// metrics.
TEST(EarlyStoppingTest, SimulateJsonNamesTheSelectedRound) {
  testing::TempDir temp;
  const CommandOutput run =
      RunCommand(TESSERA_CONSOLE_BIN,
                 {"simulate", ExamplePath(kExample), "--clients", "5", "--test-rows",
                  TestRowsPath(kDataset), DataPath(kDataset), "--json"},
                 temp.File("stderr"));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  const auto& f = json.fields();
  const double selected = f.at("selected_round").number_value();
  EXPECT_GT(selected, 0);
  EXPECT_THAT(f.at("selection").string_value(),
              HasSubstr(absl::StrFormat("round %.0f has the best validation loss", selected)));
  EXPECT_TRUE(f.at("final").struct_value().fields().contains("auc"));
  for (const auto& v : f.at("site_validation_rows").list_value().values()) {
    EXPECT_EQ(v.number_value(), 23);  // a quarter of 91 rows, rounded
  }
}

}  // namespace
}  // namespace tessera::research
