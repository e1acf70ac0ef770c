// End-to-end: the site's own commands. `tessera-client hash TASK_FILE` prints, offline, the
// spec hash the coordinator logs as `spec_sha256` when the file is submitted; `tessera-client
// privacy` shows the site's privacy budget per dataset from its store, while the daemon runs
// (the budget's refusals: tests/attack/site_budget_test.cc).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "dp/rdp.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// The value of `key=` on the coordinator's log line of event `event` for `task`; "" if none.
std::string LoggedField(const std::string& log, const std::string& event, const std::string& task,
                        const std::string& key) {
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "event=" + event) ||
        !absl::StrContains(line, " task=" + task + " ")) {
      continue;
    }
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&field, key + "=")) return std::string(field);
    }
  }
  return "";
}

class E2eSiteCliTest : public FederationTest {};

TEST_F(E2eSiteCliTest, HashOfATaskFileIsTheCoordinatorsSpecSha256) {
  ASSERT_OK(MakeTestPki({}));
  ASSERT_OK(StartCoordinator());
  // A file with every default left out, one with ranges of features, and a query.
  for (const std::string example :
       {"breast_cancer_logistic", "digits_softmax", "diabetes_query_dp"}) {
    const std::string path = SourcePath("deploy/examples/" + example + ".textproto");
    ASSERT_OK_AND_ASSIGN(CommandResult hashed, RunCommand({ClientBinary(), "hash", path}));
    ASSERT_EQ(hashed.exit_code(), 0) << hashed.err;
    EXPECT_THAT(hashed.out, MatchesRegex("[0-9a-f]{64}\n"));
    ASSERT_OK_AND_ASSIGN(CommandResult submitted, Console({"tasks", "submit"}, {path}));
    ASSERT_EQ(submitted.exit_code(), 0) << submitted.err;
    const std::string task(absl::StripAsciiWhitespace(submitted.out));
    const std::string logged = LoggedField(ReadFileOrEmpty(coordinator()->log_path()),
                                           "task_submitted", task, "spec_sha256");
    EXPECT_EQ(logged + "\n", hashed.out) << example;
  }
}

TEST_F(E2eSiteCliTest, HashOfABadTaskFileNamesTheField) {
  const std::string path = temp().File("bad.textproto");
  ASSERT_OK(common::WriteFileAtomic(path, "name: \"x\"\nrounds: 100000\n"));
  ASSERT_OK_AND_ASSIGN(CommandResult r, RunCommand({ClientBinary(), "hash", path}));
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_THAT(r.err, HasSubstr(path));
  EXPECT_THAT(r.out, IsEmpty());
  ASSERT_OK_AND_ASSIGN(CommandResult help, RunCommand({ClientBinary(), "hash", "--help"}));
  EXPECT_EQ(help.exit_code(), 0);
  EXPECT_THAT(help.out, StartsWith("usage: tessera-client hash TASK_FILE"));
}

// A DP task spends ε from every site's own budget; `tessera-client privacy` shows it from
// the store while the daemon runs, by --config (with the budget) and by --store.
TEST_F(E2eSiteCliTest, PrivacyShowsTheSiteBudgetSpentByADpTask) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  for (const std::string& name : Sites()) {
    v1::LocalPolicy::SiteBudget* budget = site(name).policy.add_site_budgets();
    budget->set_dataset("breast_cancer");
    budget->set_epsilon(4);
    budget->set_delta(1e-5);
  }
  ASSERT_OK(StartClients());
  v1::TaskSpec spec;
  ASSERT_OK(common::LoadProtoFile(SourcePath("deploy/examples/breast_cancer_dp.textproto"), &spec));
  spec.set_rounds(1);  // one FIT release at σ = 1.5: ε ≈ 3.42 at δ = 1e-5
  ASSERT_OK_AND_ASSIGN(std::string task, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.ShortDebugString();
  ASSERT_OK_AND_ASSIGN(const double spent, dp::EpsilonOfReleases(std::vector<double>{1.5}, 1e-5));

  const Site& hospital = site(Sites()[0]);
  ASSERT_OK_AND_ASSIGN(CommandResult json, RunCommand({ClientBinary(), "privacy", "--config",
                                                       hospital.config_path, "--json"}));
  ASSERT_EQ(json.exit_code(), 0) << json.err;
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
  const auto& datasets = parsed.fields().at("datasets").list_value().values();
  ASSERT_EQ(datasets.size(), 1) << json.out;
  const auto& account = datasets[0].struct_value().fields();
  EXPECT_EQ(account.at("dataset").string_value(), "breast_cancer");
  EXPECT_EQ(account.at("releases").number_value(), 1);
  EXPECT_NEAR(account.at("epsilon_spent").number_value(), spent, 1e-9);
  EXPECT_EQ(account.at("epsilon_budget").number_value(), 4);
  EXPECT_NEAR(account.at("epsilon_remaining").number_value(), 4 - spent, 1e-9);

  ASSERT_OK_AND_ASSIGN(CommandResult text,
                       RunCommand({ClientBinary(), "privacy", "--store", hospital.store_dir}));
  ASSERT_EQ(text.exit_code(), 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("eps_spent"));
  // Without the config no budget is known: ε at δ = 1e-5.
  std::vector<std::string> row;
  for (absl::string_view line : absl::StrSplit(text.out, '\n')) {
    if (absl::StartsWith(line, "breast_cancer ")) {
      row = absl::StrSplit(line, ' ', absl::SkipEmpty());
    }
  }
  EXPECT_THAT(row, ::testing::ElementsAre("breast_cancer", "1", absl::StrFormat("%.4f", spent), "-",
                                          "-", "1e-05"))
      << text.out;

  ASSERT_OK_AND_ASSIGN(CommandResult help, RunCommand({ClientBinary(), "privacy", "--help"}));
  EXPECT_EQ(help.exit_code(), 0);
  EXPECT_THAT(help.out, StartsWith("usage: tessera-client privacy"));
  ASSERT_OK_AND_ASSIGN(CommandResult neither, RunCommand({ClientBinary(), "privacy"}));
  EXPECT_EQ(neither.exit_code(), 2);
  EXPECT_THAT(neither.err, HasSubstr("--store DIR or --config FILE"));
}

// The site's own budget through the real coordinator: a DP task spends most of each site's
// ε; after the site daemons restart, a second DP task on the same dataset (another seed, so
// not a repeat) is refused by every site with SITE_BUDGET_EXHAUSTED, the coordinator ends it
// naming a site and the cause, and nothing more is charged.
TEST_F(E2eSiteCliTest, SiteBudgetRefusesASecondDpTaskAfterARestart) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  for (const std::string& name : Sites()) {
    v1::LocalPolicy::SiteBudget* budget = site(name).policy.add_site_budgets();
    budget->set_dataset("breast_cancer");
    budget->set_epsilon(4);  // one FIT release at σ = 1.5 costs ε ≈ 3.42; two do not fit
    budget->set_delta(1e-5);
  }
  ASSERT_OK(StartClients());
  v1::TaskSpec spec;
  ASSERT_OK(common::LoadProtoFile(SourcePath("deploy/examples/breast_cancer_dp.textproto"), &spec));
  spec.set_rounds(1);
  auto finished = [](const v1::TaskRecord& t) {
    return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
  };
  ASSERT_OK_AND_ASSIGN(std::string first, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(first, finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.ShortDebugString();

  // The account lives in the site store: a restart changes nothing.
  for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  ASSERT_OK(StartClients());
  spec.set_seed(spec.seed() + 1);
  spec.set_name(spec.name() + "-again");
  ASSERT_OK_AND_ASSIGN(std::string second, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord refused, WaitForTask(second, finished));
  EXPECT_EQ(refused.state(), v1::TASK_FAILED);
  EXPECT_THAT(refused.state_reason(), HasSubstr("privacy budget is exhausted"));
  EXPECT_THAT(refused.state_reason(), MatchesRegex(".*hospital-[a-z]+ refused the task.*"));

  for (const std::string& name : Sites()) {
    ASSERT_OK_AND_ASSIGN(CommandResult json, RunCommand({ClientBinary(), "privacy", "--config",
                                                         site(name).config_path, "--json"}));
    ASSERT_EQ(json.exit_code(), 0) << json.err;
    google::protobuf::Struct parsed;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &parsed).ok()) << json.out;
    const auto& account =
        parsed.fields().at("datasets").list_value().values(0).struct_value().fields();
    EXPECT_EQ(account.at("releases").number_value(), 1) << name << ": " << json.out;
  }
}

}  // namespace
}  // namespace tessera::e2e
