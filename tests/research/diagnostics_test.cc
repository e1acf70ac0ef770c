// The warnings `tessera simulate` and `tessera tasks show` print (simulation/diagnostics.h):
// client drift under several local epochs, and sites too small to train.
#include "simulation/diagnostics.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/research/research_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

v1::TaskSpec Spec(uint32_t local_epochs) {
  v1::TaskSpec spec;
  spec.mutable_dataset()->add_features("a");
  spec.mutable_dataset()->add_features("b");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_training()->set_local_epochs(local_epochs);
  return spec;
}

std::vector<v1::RoundRecord> Rounds(const std::vector<double>& losses) {
  std::vector<v1::RoundRecord> rounds(1);  // round 0: statistics, no loss
  for (size_t i = 0; i < losses.size(); ++i) {
    v1::RoundRecord r;
    r.set_round(static_cast<uint32_t>(i + 1));
    v1::Metric* m = r.add_metrics();
    m->set_name("loss");
    m->set_value(losses[i]);
    rounds.push_back(r);
  }
  return rounds;
}

TEST(DiagnosticsTest, ALossRisingAfterItsBestWithSeveralLocalEpochsIsClientDrift) {
  const std::vector<v1::RoundRecord> drifting = Rounds({0.9, 0.5, 0.45, 0.48, 0.52, 0.56});
  const std::vector<std::string> w = simulation::DriftWarnings(Spec(5), drifting);
  ASSERT_THAT(w, SizeIs(1));
  EXPECT_THAT(w[0], HasSubstr("client drift"));
  EXPECT_THAT(w[0], HasSubstr("round 3"));
  EXPECT_THAT(w[0], HasSubstr("round 6"));
  EXPECT_THAT(w[0], HasSubstr("5 local epochs"));
  // One local epoch: no drift between sites to speak of.
  EXPECT_THAT(simulation::DriftWarnings(Spec(1), drifting), IsEmpty());
  // Still falling, flat within 2%, or a single bump: no warning.
  EXPECT_THAT(simulation::DriftWarnings(Spec(5), Rounds({0.9, 0.6, 0.5, 0.45})), IsEmpty());
  EXPECT_THAT(simulation::DriftWarnings(Spec(5), Rounds({0.5, 0.45, 0.452, 0.455})), IsEmpty());
  EXPECT_THAT(simulation::DriftWarnings(Spec(5), Rounds({0.5, 0.45, 0.6, 0.5})), IsEmpty());
}

TEST(DiagnosticsTest, SitesWithFewerRowsThanTheModelHasParametersAreNamed) {
  // Logistic regression on 2 features: 3 parameters, so the floor is 10 rows.
  EXPECT_THAT(simulation::SmallSiteWarnings(Spec(1), {50, 9, 10, 3}),
              ElementsAre(HasSubstr("site-02 (9 rows), site-04 (3 rows)")));
  EXPECT_THAT(simulation::SmallSiteWarnings(Spec(1), {50, 10}), IsEmpty());
  // Hundreds of one-row sites (a by-column partition): ten named, the rest counted.
  const std::vector<std::string> many =
      simulation::SmallSiteWarnings(Spec(1), std::vector<size_t>(300, 1));
  ASSERT_THAT(many, SizeIs(1));
  EXPECT_THAT(many[0], HasSubstr("site-10 (1 rows), and 290 more hold fewer"));
  EXPECT_THAT(many[0], ::testing::Not(HasSubstr("site-11")));
}

TEST(DiagnosticsTest, SimulateWarnsOfSitesTooSmallForTheModel) {
  // 455 training rows over 20 sites: about 23 rows a site, below the 31 parameters.
  testing::TempDir temp;
  const CommandOutput run = RunCommand(
      TESSERA_CONSOLE_BIN,
      {"simulate", ExamplePath("breast_cancer_logistic"), "--clients", "20", "--test-rows",
       TestRowsPath("breast_cancer_wisconsin"), DataPath("breast_cancer_wisconsin"), "--json"},
      temp.File("stderr"));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
  const auto& warnings = json.fields().at("warnings").list_value().values();
  ASSERT_EQ(warnings.size(), 1) << run.out;
  EXPECT_THAT(warnings[0].string_value(), HasSubstr("small sites: site-01"));
  EXPECT_THAT(warnings[0].string_value(), HasSubstr("fewer training rows than 31"));
}

}  // namespace
}  // namespace tessera::research
