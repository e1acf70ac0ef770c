// Attack 1 of the privacy issue — the difference of two sessions — end to end: the twin of
// tests/attack's DifferenceAttack with real site daemons. Three tessera-client processes,
// each with its real TLS certificate and its RocksDB site store in its data_dir, connect
// over mutually authenticated gRPC to a coordinator the test hosts and controls
// (cheating_coordinator.h). The cheat runs the FIT stage of round 1 — same task spec, same
// global model, same standardisation — as two secure-aggregation sessions through the real
// session driver: first with cohort {A, B, C}, then, as a "retry", with {A, B}. If A and B
// sent their vectors again, the first sum minus the second would be C's vector.
//
//   RestartedSitesRefuseTheSecondCohort: every daemon is restarted (SIGTERM, then started
//     again with the same config and store) between the sessions. The first sum is
//     released; in the second session A and B decline with ALREADY_CONTRIBUTED and no sum
//     is released; neither the released sum nor any difference of two is C's true vector;
//     and each site's store holds exactly one FIT contribution.
//   ASiteThatForgetsItsStoreLeaksItsVector: the control. A and B come back with empty
//     stores (a new data_dir, as a site that lost or deleted its store would): the second
//     sum is released and the difference is C's vector to within the quantisation error.
//     This is why the store must never be deleted or replaced with an empty one.
//
// C's true vector is computed here, independently of the daemons, by a WorkProcessor on C's
// files with the same work item (as tests/attack's AttackFederation::TrueVector does).
#include <sys/types.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/site_store.h"
#include "client/work_processor.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/secure_stage.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/contribution_layout.h"
#include "proto/model_delta.h"
#include "proto/model_layout.h"
#include "proto/site_state.pb.h"
#include "proto/validation.h"
#include "secagg/protocol.h"
#include "secagg/stage_encoding.h"
#include "tests/e2e/cheating_coordinator.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/process.h"
#include "tests/testing/raw_http.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kTaskId[] = "task-difference";
constexpr uint32_t kRound = 1;
// Far above the quantisation error of the FIT encoding (< 1e-7 for a sum of a few sites),
// far below what a recovered vector's entries weigh: a released sum, or a difference of
// two, this close to one site's vector is that vector.
constexpr double kRecoveryTolerance = 1e-4;
// The quantisation error of a sum or of a difference of two (measured: ~3e-8): what the
// control's difference must reach, and how closely the true vectors must add up to a sum.
constexpr double kQuantisationTolerance = 1e-7;
// Session step deadlines (see FitSession). Worst case per test: two sessions of
// 30 + 4 x 15 s, within the e2e suite's 300 s ctest timeout.
constexpr absl::Duration kFirstStepDeadline = absl::Seconds(30);
constexpr absl::Duration kStepDeadline = absl::Seconds(15);

double MaxAbsDifference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

std::vector<double> Difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(std::min(a.size(), b.size()));
  for (size_t i = 0; i < d.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

// Fails if any released sum, or the difference of any two, is `target` (site `who`'s vector).
void ExpectNotRecoverable(const std::vector<std::vector<double>>& released,
                          const std::vector<double>& target, const std::string& who) {
  ASSERT_FALSE(target.empty());
  for (size_t i = 0; i < released.size(); ++i) {
    const double alone = MaxAbsDifference(released[i], target);
    EXPECT_GT(alone, kRecoveryTolerance)
        << "released sum " << i << " is " << who << "'s vector (max error " << alone << ")";
    for (size_t j = 0; j < released.size(); ++j) {
      if (i == j) continue;
      const double error = MaxAbsDifference(Difference(released[i], released[j]), target);
      EXPECT_GT(error, kRecoveryTolerance) << "sum " << i << " minus sum " << j << " is " << who
                                           << "'s vector (max error " << error << ")";
    }
  }
}

std::string Describe(const coordinator::SecureStageResult& r) {
  std::string out = r.completed ? "completed" : "no sum (" + r.abort + ")";
  for (const std::string& d : r.drops) out += "\n  drop " + d;
  return out;
}

class E2eDifferenceAttack : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK_AND_ASSIGN(cheater_, CheatingCoordinator::Start(coordinator_tls()));
    // One site's metrics, on a port of the system's choosing.
    edit_client_config_ = [this](const std::string& name, v1::ClientConfig* config) {
      if (name != Sites().front()) return;
      config->set_metrics_listen_address("127.0.0.1:0");
      config->set_metrics_ready_file(temp().File("site-metrics"));
    };
    // min_cohort 2 at every site: each of the two cohorts meets every site's minimum, so
    // nothing but the once-only rule stands in the attack's way.
    for (const std::string& name : Sites()) ASSERT_OK(StartSite(name));
    for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
    ASSERT_OK(MakeFitItem());
  }

  void TearDown() override {
    FederationTest::TearDown();  // the daemons first: none is left dialling a closed port
    if (cheater_ != nullptr) cheater_->Shutdown();
  }

  absl::Status StartSite(const std::string& name) {
    return StartClient(name, cheater_->address(), {}, /*min_cohort=*/2);
  }

  // The first work item of round 1's FIT, as the real coordinator builds it (task_runner.cc
  // CommitStatistics, RunFit, RunDurableStage): the example task with min_clients 2,
  // validated, defaults applied; the pooled standardisation the statistics round would
  // release (computed here from the sites' files, as proto::DecodeStatistics turns the
  // summed statistics into it); the initial model; the resolved L2 penalty.
  absl::Status MakeFitItem() {
    ASSIGN_OR_RETURN(spec_, LoadExampleTask());
    spec_.set_min_clients(2);
    RETURN_IF_ERROR(common::FieldErrorsToStatus(proto::ValidateTaskSpec(spec_)));
    proto::ApplyTaskDefaults(&spec_);

    std::vector<std::string> features(spec_.dataset().features().begin(),
                                      spec_.dataset().features().end());
    const bool with_label = proto::StatisticsIncludeLabel(spec_.model());
    const size_t columns = features.size() + (with_label ? 1 : 0);
    std::vector<double> summed(proto::StatisticsLength(columns), 0.0);
    for (const std::string& name : Sites()) {
      const std::string& path = site(name).train_csv;
      ASSIGN_OR_RETURN(client::CsvTable table, client::LoadCsv(path));
      ASSIGN_OR_RETURN(client::Dataset data,
                       client::SelectColumns(table, features, spec_.dataset().label(), path));
      client::LocalStatistics stats = client::ComputeStatistics(data);
      if (with_label) {
        double sum = 0, sum_sq = 0;
        for (double y : data.y) {
          sum += y;
          sum_sq += y * y;
        }
        stats.sums.push_back(sum);
        stats.sums_of_squares.push_back(sum_sq);
      }
      const std::vector<double> local =
          proto::EncodeStatistics(stats.num_rows, stats.sums, stats.sums_of_squares);
      for (size_t i = 0; i < summed.size(); ++i) summed[i] += local[i];
    }
    ASSIGN_OR_RETURN(proto::PooledStatistics pooled, proto::DecodeStatistics(summed, columns));
    const size_t d = features.size();
    v1::Standardization s;
    s.mutable_mean()->Assign(pooled.mean.begin(), pooled.mean.begin() + d);
    s.mutable_stddev()->Assign(pooled.stddev.begin(), pooled.stddev.begin() + d);
    s.set_num_train_rows(pooled.num_rows);
    if (with_label) {
      s.set_label_mean(pooled.mean[d]);
      s.set_label_stddev(pooled.stddev[d]);
    }
    ASSIGN_OR_RETURN(std::vector<float> initial,
                     proto::InitialParameters(spec_.model(), d, spec_.seed()));

    fit_item_ = v1::WorkItem();
    fit_item_.mutable_model()->mutable_values()->Assign(initial.begin(), initial.end());
    fit_item_.set_model_hash(crypto::HashModel(initial));
    *fit_item_.mutable_standardization() = s;
    fit_item_.set_l2(proto::ResolvedL2(spec_.model(), pooled.num_rows));
    fit_item_.set_task_id(kTaskId);
    fit_item_.set_round(kRound);
    fit_item_.set_stage(v1::STAGE_FIT);
    *fit_item_.mutable_spec() = spec_;
    fit_item_.set_spec_hash(crypto::HashTaskSpec(spec_));
    return absl::OkStatus();
  }

  // One session of round 1's FIT over `cohort`, with what the real coordinator would
  // propose for that cohort: encoding, threshold floor(2n/3) + 1 (at least min_clients),
  // the spec's deadlines.
  coordinator::SecureStageRequest FitSession(std::vector<std::string> cohort, uint32_t attempt) {
    std::sort(cohort.begin(), cohort.end());
    const uint32_t n = static_cast<uint32_t>(cohort.size());
    coordinator::SecureStageRequest r;
    r.task_id = kTaskId;
    r.round = kRound;
    r.stage = v1::STAGE_FIT;
    r.attempt = attempt;
    r.cohort = std::move(cohort);
    r.first_item = fit_item_;
    absl::StatusOr<v1::SecAggEncoding> encoding = secagg::StageEncoding(spec_, v1::STAGE_FIT, n);
    EXPECT_OK(encoding.status());
    if (encoding.ok()) r.encoding = *encoding;
    r.threshold = std::max(secagg::SafeThreshold(n, std::nullopt), spec_.min_clients());
    // Shorter than the spec's (120 s, 60 s), so that a daemon that never answers fails the
    // test well within its ctest timeout; the sites use a step's deadline only to time
    // their push and to keep a session's record a while after it.
    r.first_step_deadline =
        std::min(kFirstStepDeadline, absl::Seconds(spec_.round_deadline_seconds()));
    r.step_deadline =
        std::min(kStepDeadline, absl::Seconds(spec_.secure_aggregation().step_deadline_seconds()));
    return r;
  }

  // `name`'s real-valued FIT vector for the item its daemon was sent in a cohort of
  // `cohort_size`: a fresh WorkProcessor on the site's own config and files. Empty (with a
  // failure) if the site would decline.
  std::vector<double> TrueVector(const std::string& name, uint32_t cohort_size) {
    v1::ClientConfig config;
    absl::Status loaded = common::LoadProtoFile(site(name).config_path, &config);
    EXPECT_OK(loaded);
    if (!loaded.ok()) return {};
    proto::ApplyClientDefaults(&config);
    v1::WorkItem item = fit_item_;
    item.set_cohort_size(cohort_size);
    client::WorkProcessor processor(name, config);
    client::WorkOutcome outcome = processor.Process(item);
    EXPECT_TRUE(outcome.contribution.has_value()) << outcome.decline.ShortDebugString();
    return outcome.contribution.value_or(std::vector<double>());
  }

  // The FIT contributions recorded in the store at `dir` (no daemon may hold it).
  std::vector<v1::ContributionRecord> FitContributions(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<client::SiteStore>> store = client::OpenSiteStore(dir);
    EXPECT_OK(store.status());
    if (!store.ok()) return {};
    absl::StatusOr<std::vector<v1::ContributionRecord>> all = (*store)->ListContributions();
    EXPECT_OK(all.status());
    std::vector<v1::ContributionRecord> fit;
    for (const v1::ContributionRecord& c : all.value_or(std::vector<v1::ContributionRecord>())) {
      EXPECT_EQ(c.stage(), v1::STAGE_FIT) << c.ShortDebugString();
      if (c.stage() == v1::STAGE_FIT) fit.push_back(c);
    }
    return fit;
  }

  static std::string Label(uint32_t attempt) {
    return coordinator::SecureStageRunner::SessionLabel(kTaskId, kRound, v1::STAGE_FIT, attempt);
  }

  std::unique_ptr<CheatingCoordinator> cheater_;
  v1::TaskSpec spec_;
  v1::WorkItem fit_item_;
};

TEST_F(E2eDifferenceAttack, RestartedSitesRefuseTheSecondCohort) {
  const std::string a = Sites()[0], b = Sites()[1], c = Sites()[2];
  const std::vector<double> target = TrueVector(c, 3);
  ASSERT_FALSE(target.empty());

  // A normal session: the sum over all three is released.
  const coordinator::SecureStageResult one = cheater_->RunSession(FitSession({a, b, c}, 1));
  ASSERT_TRUE(one.completed) << Describe(one);
  EXPECT_THAT(one.survivors, ElementsAre(a, b, c));
  // The weights are n_i / N: over every site they add up to 1.
  EXPECT_NEAR(one.sums[0], 1.0, 1e-6);
  // The true vectors computed here are what the daemons sent: they add up to the sum. (So
  // the check below compares against C's vector as C's daemon computes it.)
  std::vector<double> all = TrueVector(a, 3);
  const std::vector<double> of_b = TrueVector(b, 3);
  ASSERT_EQ(all.size(), target.size());
  ASSERT_EQ(of_b.size(), target.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] += of_b[i] + target[i];
  EXPECT_LT(MaxAbsDifference(one.sums, all), kQuantisationTolerance);

  // Every site daemon restarts: same config, same store, a new process.
  for (const std::string& name : Sites()) {
    const pid_t before = site(name).process->pid();
    ASSERT_OK(StopClient(name));
    ASSERT_OK(StartSite(name));
    EXPECT_NE(site(name).process->pid(), before);
  }
  for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));

  // The "retry" without C: A and B refuse, with their own reason, before sending anything.
  const coordinator::SecureStageResult two = cheater_->RunSession(FitSession({a, b}, 2));
  EXPECT_FALSE(two.completed) << "the second cohort's sum was released";
  EXPECT_THAT(two.already_contributed, ElementsAre(a, b)) << Describe(two);
  EXPECT_THAT(two.masked_inputs, IsEmpty());
  EXPECT_THAT(two.drops, Each(HasSubstr("ALREADY_CONTRIBUTED")));
  EXPECT_THAT(two.survivors, IsEmpty());

  std::vector<std::vector<double>> released = {one.sums};
  if (two.completed) released.push_back(two.sums);
  ExpectNotRecoverable(released, target, c);

  // What left each site is on record, once: the FIT contribution of the first session.
  for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  for (const std::string& name : Sites()) {
    const std::vector<v1::ContributionRecord> fit = FitContributions(site(name).store_dir);
    ASSERT_EQ(fit.size(), 1u) << name;
    EXPECT_EQ(fit[0].session(), Label(1)) << name;
    EXPECT_EQ(fit[0].model_hash(), fit_item_.model_hash()) << name;
  }
}

// The control: the same attack against sites whose stores were lost between the sessions.
// It works — which is what the store is for.
TEST_F(E2eDifferenceAttack, ASiteThatForgetsItsStoreLeaksItsVector) {
  const std::string a = Sites()[0], b = Sites()[1], c = Sites()[2];
  const std::vector<double> target = TrueVector(c, 3);
  ASSERT_FALSE(target.empty());

  const coordinator::SecureStageResult one = cheater_->RunSession(FitSession({a, b, c}, 1));
  ASSERT_TRUE(one.completed) << Describe(one);

  // A and B come back with empty stores; C is not asked again and keeps running.
  std::vector<std::string> old_stores;
  for (const std::string& name : {a, b}) {
    ASSERT_OK(StopClient(name));
    old_stores.push_back(site(name).store_dir);
    site(name).store_dir = site(name).dir + "/store-after-loss";
    ASSERT_OK(StartSite(name));
  }
  for (const std::string& name : {a, b}) ASSERT_OK(WaitClientReady(name));

  const coordinator::SecureStageResult two = cheater_->RunSession(FitSession({a, b}, 2));
  ASSERT_TRUE(two.completed) << Describe(two);
  EXPECT_THAT(two.survivors, ElementsAre(a, b));
  EXPECT_THAT(two.already_contributed, IsEmpty());

  // The difference is C's vector — its weight n_C / N (its row count) and its update.
  const double error = MaxAbsDifference(Difference(one.sums, two.sums), target);
  EXPECT_LT(error, kQuantisationTolerance);
  RecordProperty("leak_max_error", std::to_string(error));
  std::printf("first sum minus second sum is %s's vector to %.3g (max abs)\n", c.c_str(), error);

  // Each store tells the truth about its own session; together they show A and B sent the
  // same contribution twice.
  for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  for (size_t i = 0; i < old_stores.size(); ++i) {
    const std::string& name = i == 0 ? a : b;
    const std::vector<v1::ContributionRecord> before = FitContributions(old_stores[i]);
    const std::vector<v1::ContributionRecord> after = FitContributions(site(name).store_dir);
    ASSERT_EQ(before.size(), 1u) << name;
    ASSERT_EQ(after.size(), 1u) << name;
    EXPECT_EQ(before[0].session(), Label(1)) << name;
    EXPECT_EQ(after[0].session(), Label(2)) << name;
    EXPECT_EQ(before[0].key(), after[0].key()) << name << ": the same contribution, sent twice";
  }
}

// A coordinator that sends a model as a delta that does not add up — the data encodes the
// model against another base than the one it names, so the site's decoding gives a model
// that does not hash to the item's model_hash — gets no answer computed on a wrong model: each
// site refuses the delta, forgets the model it held and reconnects, is handed the item
// again with the model whole (it lists no model now) and answers; the session completes.
TEST_F(E2eDifferenceAttack, ABadModelDeltaIsRefusedAndTheModelTakenWhole) {
  // Round 1: the model whole; every site then holds it.
  const coordinator::SecureStageResult first = cheater_->RunSession(FitSession(Sites(), 1));
  ASSERT_TRUE(first.completed) << Describe(first);

  // "Round 2" on a moved model, sent as a delta named after the model the sites hold but
  // encoded against another.
  const std::vector<float> held(fit_item_.model().values().begin(),
                                fit_item_.model().values().end());
  std::vector<float> moved = held;
  std::vector<float> other = held;
  for (size_t i = 0; i < moved.size(); ++i) {
    moved[i] += 0.01F * static_cast<float>(i + 1);
    other[i] += 1.0F;
  }
  coordinator::SecureStageRequest second = FitSession(Sites(), 1);
  second.round = 2;
  second.first_item.set_round(2);
  second.first_item.mutable_model()->mutable_values()->Assign(moved.begin(), moved.end());
  second.first_item.set_model_hash(crypto::HashModel(moved));
  ASSERT_OK_AND_ASSIGN(std::string data, proto::EncodeModelDelta(other, moved));
  second.model_delta =
      std::make_shared<const coordinator::ModelDeltaBytes>(coordinator::ModelDeltaBytes{
          crypto::HashModel(held), std::make_shared<const std::string>(std::move(data))});
  const coordinator::SecureStageResult result = cheater_->RunSession(second);
  EXPECT_TRUE(result.completed) << Describe(result);
  EXPECT_EQ(result.survivors.size(), Sites().size()) << Describe(result);
  for (const std::string& name : Sites()) {
    const std::string log = site(name).process->Log();
    EXPECT_THAT(log, HasSubstr("event=model_delta_refused")) << name;
    EXPECT_THAT(log, HasSubstr("does not hash to model_hash")) << name;
  }
  // The operator sees it too: the site counts the refused delta, and the model it took whole
  // instead beside round 1's.
  ASSERT_OK_AND_ASSIGN(
      std::string bound,
      WaitForFile(temp().File("site-metrics"), *site(Sites().front()).process, absl::Seconds(30)));
  int port = 0;
  const std::string address(absl::StripSuffix(bound, "\n"));
  ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << bound;
  const std::string page = testing::RawHttpBody(testing::RawHttpGet(port, "/metrics"));
  EXPECT_THAT(page, HasSubstr("tessera_client_models_received_total{form=\"delta_refused\"} 1\n"))
      << page;
  EXPECT_THAT(page, HasSubstr("tessera_client_models_received_total{form=\"whole\"} 2\n")) << page;
}

}  // namespace
}  // namespace tessera::e2e
