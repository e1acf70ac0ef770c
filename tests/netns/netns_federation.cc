#include "tests/netns/netns_federation.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/site_store.h"
#include "common/status.h"
#include "proto/site_state.pb.h"
#include "secagg/protocol.h"
#include "tests/testing/status_matchers.h"

namespace tessera::netns {

const std::vector<std::string>& NetnsSites() {
  static const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c",
                                                  "hospital-d"};
  return kSites;
}

std::string RelayBinary() { return TESSERA_FAULT_RELAY_BIN; }

v1::TaskSpec NetnsTask(const std::string& dataset, bool long_run, uint32_t min_clients,
                       uint32_t step_deadline_seconds, uint32_t rounds) {
  absl::StatusOr<v1::TaskSpec> example = e2e::LoadExampleTask();
  EXPECT_OK(example.status());
  v1::TaskSpec spec = *example;
  spec.set_name(long_run ? "netns-mlp-long" : "netns-mlp");
  spec.set_description("The demo's features through an MLP, across network namespaces.");
  spec.mutable_dataset()->set_id(dataset);
  v1::ModelSpec& model = *spec.mutable_model();
  model.Clear();
  model.set_kind(v1::ModelSpec::MLP);
  model.set_num_classes(2);
  model.set_l2(1e-4);
  model.add_hidden_layers(long_run ? 512 : 256);
  if (long_run) model.add_hidden_layers(256);
  v1::TrainingSpec& training = *spec.mutable_training();
  training.Clear();
  training.set_local_epochs(1);
  training.set_batch_size(32);
  training.set_learning_rate(0.05);
  spec.set_rounds(long_run ? rounds + 5 : rounds);
  spec.set_min_clients(min_clients);
  spec.set_round_deadline_seconds(60);
  spec.set_max_round_attempts(3);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(step_deadline_seconds);
  return spec;
}

v1::TaskSpec NetnsBigTask(const std::string& dataset, bool long_run, uint32_t min_clients) {
  v1::TaskSpec spec = NetnsTask(dataset, long_run, min_clients, 60);
  spec.set_name(long_run ? "netns-big-mlp-long" : "netns-big-mlp");
  v1::ModelSpec& model = *spec.mutable_model();
  model.clear_hidden_layers();
  model.add_hidden_layers(long_run ? 2048 : 4096);
  if (long_run) model.add_hidden_layers(512);
  return spec;
}

void NetnsFederationTest::SetUp() {
  const char* long_env = std::getenv("TESSERA_NETNS_LONG");
  long_run_ = long_env != nullptr && std::string(long_env) == "1";
  absl::StatusOr<std::unique_ptr<Topology>> made = Topology::Create(NetnsSites());
  if (absl::IsFailedPrecondition(made.status())) {
    GTEST_SKIP() << "the network-namespace suite cannot run here: " << made.status().message();
  }
  ASSERT_OK(made.status());
  topology_ = std::move(*made);
  command_prefix_ = [this](const std::string& who) {
    return topology_->Exec(who == "coordinator" ? topology_->coordinator_ns()
                                                : topology_->site_ns(who));
  };
  edit_client_config_ = [this](const std::string&, v1::ClientConfig* config) {
    config->set_server_name(topology_->coordinator_ip());
    v1::LocalDataset twin = config->datasets(0);
    twin.set_id(kBaselineDataset);
    *config->add_datasets() = twin;
  };
}

void NetnsFederationTest::TearDown() {
  e2e::FederationTest::TearDown();  // the daemons first: none is left behind a relay
  for (auto& [site, relay] : relays_) {
    if (relay.process == nullptr) continue;
    e2e::ExitStatus how = relay.process->Terminate();
    EXPECT_TRUE(how.Succeeded()) << "relay of " << site << ": " << how.ToString();
    if (HasFailure()) {
      std::fprintf(stderr, "---- relay of %s: last lines of %s\n%s\n", site.c_str(),
                   relay.process->log_path().c_str(), relay.process->LogTail(10).c_str());
    }
  }
  relays_.clear();
  topology_.reset();
}

absl::Status NetnsFederationTest::StartFederation(uint32_t min_cohort) {
  const std::vector<std::string>& sites = NetnsSites();
  RETURN_IF_ERROR(MakeTestPki(sites));
  // The coordinator's certificate names only its address on the network.
  testing::TestPki::NodeOptions options;
  options.subject_alt_names = {topology_->coordinator_ip()};
  RETURN_IF_ERROR(pki()->IssueNode("coordinator", crypto::Role::kCoordinator, options).status());
  RETURN_IF_ERROR(SplitData(sites));
  RETURN_IF_ERROR(StartCoordinator(topology_->coordinator_ip() + ":0"));
  for (const std::string& site : sites) RETURN_IF_ERROR(StartRelay(site));
  for (const std::string& site : sites) {
    RETURN_IF_ERROR(StartClient(site, relays_[site].address, {}, min_cohort));
  }
  for (const std::string& site : sites) RETURN_IF_ERROR(WaitClientReady(site));
  return absl::OkStatus();
}

absl::Status NetnsFederationTest::StartRelay(const std::string& site, const std::string& up,
                                             const std::string& down, const std::string& schedule,
                                             int max_resets) {
  Relay& relay = relays_[site];
  const std::string base = temp().File("relay-" + site);
  relay.control = base + ".control";
  relay.stats = base + ".stats";
  const std::string ready = base + ".ready";
  std::vector<std::string> argv = topology_->Exec(topology_->network_ns());
  argv.insert(argv.end(), {RelayBinary(),
                           "--listen",
                           topology_->network_ip() + ":0",
                           "--upstream",
                           address(),
                           "--up",
                           up,
                           "--down",
                           down,
                           "--schedule",
                           schedule,
                           "--max-resets",
                           absl::StrCat(max_resets),
                           "--seed",
                           absl::StrCat(relays_.size()),
                           "--ready-file",
                           ready,
                           "--control-file",
                           relay.control,
                           "--stats-file",
                           relay.stats});
  ASSIGN_OR_RETURN(relay.process, e2e::Process::Start(argv, base + ".log"));
  ASSIGN_OR_RETURN(std::string bound, e2e::WaitForFile(ready, *relay.process));
  relay.address = std::string(absl::StripSuffix(bound, "\n"));
  return absl::OkStatus();
}

absl::Status NetnsFederationTest::RelayCommand(const std::string& site, const std::string& line) {
  Relay& relay = relays_.at(site);
  const std::string text = line + "\n";
  // One write with O_APPEND: the relay never sees half a line as a whole one.
  int fd = open(relay.control.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError("cannot open " + relay.control);
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written) return absl::InternalError("cannot write " + relay.control);
  const int want = ++relay.commands;
  const std::string marker = absl::StrCat(" commands=", want, "\n");
  return e2e::WaitFor(
      absl::StrCat("relay of ", site, " to execute '", line, "'"),
      [&] { return absl::EndsWith(e2e::ReadFileOrEmpty(relay.stats), marker); }, absl::Seconds(10));
}

absl::StatusOr<testing::RelayStats> NetnsFederationTest::RelayCounts(const std::string& site) {
  const std::string text = e2e::ReadFileOrEmpty(relays_.at(site).stats);
  testing::RelayStats stats;
  std::map<std::string, int64_t> values;
  for (absl::string_view item : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(item, '=');
    int64_t v = 0;
    if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &v)) values[kv[0]] = v;
    if (kv.size() == 2 && kv[0] == "cut") stats.cut = kv[1] == "true";
  }
  if (!values.contains("connections")) {
    return absl::InternalError(absl::StrCat("relay stats of ", site, ": '", text, "'"));
  }
  stats.connections = values["connections"];
  stats.resets = values["resets"];
  stats.bytes_up = values["bytes_up"];
  stats.bytes_down = values["bytes_down"];
  stats.cuts = values["cuts"];
  return stats;
}

absl::StatusOr<NetnsFederationTest::TaskRun> NetnsFederationTest::RunTask(
    const v1::TaskSpec& spec, absl::Duration timeout,
    const std::function<void(const v1::GetTaskResponse&)>& during) {
  std::map<std::string, testing::RelayStats> before;
  for (const std::string& site : NetnsSites()) {
    ASSIGN_OR_RETURN(before[site], RelayCounts(site));
  }
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::string id, SubmitTask(spec));
  const absl::Time give_up = start + timeout;
  TaskRun run;
  while (true) {
    // Each call timed: a slow answer from the coordinator is a finding, not noise.
    const absl::Time asked = absl::Now();
    absl::StatusOr<v1::GetTaskResponse> polled = GetTask(id);
    const absl::Duration took = absl::Now() - asked;
    ++run.polls;
    if (!polled.ok()) {
      return absl::Status(
          polled.status().code(),
          absl::StrCat(polled.status().message(), " (poll ", run.polls, " of ", id, " took ",
                       absl::FormatDuration(took), ", the slowest before it ",
                       absl::FormatDuration(run.slowest_poll), "); coordinator log:\n",
                       coordinator()->LogTail()));
    }
    run.slowest_poll = std::max(run.slowest_poll, took);
    run.final = *std::move(polled);
    const v1::TaskState state = run.final.task().state();
    if (state == v1::TASK_COMPLETED || state == v1::TASK_FAILED || state == v1::TASK_CANCELLED) {
      break;
    }
    if (during) during(run.final);
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(absl::StrCat(
          id, " still ", v1::TaskState_Name(state), " after ", absl::FormatDuration(timeout),
          " (round ", run.final.task().last_committed_round(), "); coordinator log:\n",
          coordinator()->LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  run.wall = absl::Now() - start;
  for (const v1::RoundRecord& r : run.final.rounds()) run.sessions += r.stage_attempts_size();
  for (const std::string& site : NetnsSites()) {
    ASSIGN_OR_RETURN(testing::RelayStats after, RelayCounts(site));
    run.bytes_up += after.bytes_up - before[site].bytes_up;
    run.bytes_down += after.bytes_down - before[site].bytes_down;
    run.resets += after.resets - before[site].resets;
  }
  return run;
}

namespace {

// The rounds of `task` whose sum holds `site` (`participated`) and those whose statistics,
// FIT or FIT_EVALUATE session dropped it at or after the masked-input step (`dropped_late`).
struct SiteRounds {
  std::set<uint32_t> participated;
  std::set<uint32_t> dropped_late;
};
SiteRounds RoundsOfSite(const v1::GetTaskResponse& task, const std::string& site) {
  SiteRounds rounds;
  for (const v1::RoundRecord& r : task.rounds()) {
    for (const std::string& p : r.fit_participants()) {
      if (p == site) rounds.participated.insert(r.round());
    }
    for (const v1::StageAttempt& a : r.stage_attempts()) {
      if (a.stage() != v1::STAGE_FIT && a.stage() != v1::STAGE_FIT_EVALUATE &&
          a.stage() != v1::STAGE_STATISTICS) {
        continue;
      }
      for (const v1::SiteAnswer& answer : a.sites()) {
        if (answer.client_id() == site && answer.kind() == v1::SITE_ANSWER_DROPPED &&
            secagg::StepIndex(answer.step()) >= secagg::StepIndex(v1::SECAGG_MASKED_INPUT)) {
          rounds.dropped_late.insert(r.round());
        }
      }
    }
  }
  return rounds;
}

}  // namespace

void NetnsFederationTest::ExpectSitesKeptApart(const v1::GetTaskResponse& task) {
  const std::vector<std::string>& sites = NetnsSites();
  std::set<std::string> ids = {kDataset, kBaselineDataset};
  // While they run: no site daemon has a file of another site's directory open (its
  // store, its CSVs, its log are all its own).
  for (const std::string& name : sites) {
    Site& s = site(name);
    ASSERT_NE(s.process, nullptr);
    const std::string fds = absl::StrCat("/proc/", s.process->pid(), "/fd");
    for (const auto& fd : std::filesystem::directory_iterator(fds)) {
      std::error_code error;
      const std::string target = std::filesystem::read_symlink(fd.path(), error).string();
      for (const std::string& other : sites) {
        if (other == name) continue;
        EXPECT_FALSE(absl::StartsWith(target, site(other).dir + "/"))
            << name << "'s daemon has " << target << " open";
      }
    }
  }
  for (const std::string& name : sites) {
    Site& s = site(name);
    ASSERT_OK(StopClient(name));
    // The store is inside the site's own directory, which only its owner may enter.
    EXPECT_EQ(std::filesystem::path(s.store_dir).parent_path(), std::filesystem::path(s.dir));
    struct stat st {};
    ASSERT_EQ(stat(s.dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << s.dir;
    ASSERT_EQ(stat(s.store_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << s.store_dir;
    // No file in it is named after another site.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(s.dir)) {
      for (const std::string& other : sites) {
        if (other == name) continue;
        EXPECT_EQ(entry.path().string().find(other), std::string::npos)
            << name << "'s directory holds " << entry.path();
      }
    }
    // Its records of the task's sums (statistics in round 0, FIT or FIT_EVALUATE after): one
    // for every round whose sum the coordinator says it is in, and besides those only for
    // rounds in which the coordinator dropped it at or after the masked-input step (a
    // masked input it recorded and then sent in part or not at all: a link cut while it was
    // on the wire).
    const auto [participated, dropped_late] = RoundsOfSite(task, name);
    absl::StatusOr<std::unique_ptr<client::SiteStore>> store =
        client::OpenSiteStoreReadOnly(s.store_dir);
    ASSERT_OK(store.status());
    absl::StatusOr<std::vector<v1::ContributionRecord>> records = (*store)->ListContributions();
    ASSERT_OK(records.status());
    std::set<uint32_t> recorded;
    for (const v1::ContributionRecord& c : *records) {
      EXPECT_TRUE(ids.contains(c.dataset_id())) << name << " holds a record of " << c.dataset_id();
      if (c.task_id() == task.task().task_id() &&
          (c.stage() == v1::STAGE_FIT || c.stage() == v1::STAGE_FIT_EVALUATE ||
           c.stage() == v1::STAGE_STATISTICS)) {
        recorded.insert(c.round());
      }
    }
    for (uint32_t round : participated) {
      EXPECT_TRUE(recorded.contains(round))
          << name << " is in the sum of round " << round << " but its store has no record of it";
    }
    for (uint32_t round : recorded) {
      EXPECT_TRUE(participated.contains(round) || dropped_late.contains(round))
          << name << "'s store records round " << round
          << ", which the coordinator neither summed it in nor dropped it from after its masked "
             "input";
    }
  }
}

void NetnsFederationTest::Report(const std::string& scenario, const std::string& injected,
                                 const TaskRun& run) {
  const v1::TaskRecord& t = run.final.task();
  int drops = 0;
  for (const v1::RoundRecord& r : run.final.rounds()) drops += r.drops_size();
  const std::string line = absl::StrCat(
      "NETNS_RESULT scenario=", scenario, " mode=", long_run_ ? "long" : "short", " injected=\"",
      injected, "\" outcome=", v1::TaskState_Name(t.state()), " rounds=", t.last_committed_round(),
      " sessions=", run.sessions, " drops=", drops,
      " wall_s=", absl::StrFormat("%.1f", absl::ToDoubleSeconds(run.wall)),
      " bytes_sites_to_coordinator=", run.bytes_up, " bytes_coordinator_to_sites=", run.bytes_down,
      " relay_resets=", run.resets, " polls=", run.polls,
      " slowest_poll_ms=", absl::ToInt64Milliseconds(run.slowest_poll));
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  RecordProperty("netns_result", line);
}

}  // namespace tessera::netns
