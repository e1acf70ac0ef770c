// federation_bench: what a secure round costs with real processes (issue 12's table,
// docs/performance.md). Each scenario starts a coordinator and its sites as separate
// processes on loopback (mutual TLS, real stores, the e2e fixture, tests/e2e/federation.h),
// runs one task to completion and prints one "BENCH" line of figures read from outside the
// processes:
//
//   - round_s: each training round's wall time, committed_unix_ms - started_unix_ms of its
//     record (its sessions together: one FIT_EVALUATE a round); fit_session_s: its FIT or
//     FIT_EVALUATE session's;
//   - bytes up and down per site per round over 4d (d = the model's parameters): what the
//     kernel counted on each site daemon's TCP connections (`ss -tinp`: bytes_acked and
//     bytes_received, TLS and HTTP/2 included), from just before the task to its end;
//   - site CPU per session: each site daemon's user + system time (/proc/PID/stat) over
//     the task, divided by the secure sessions it was invited to (training included);
//   - peak resident memory (VmHWM) of the coordinator and of the site daemons.
//
// Not run by ctest: deploy/bench.sh builds it in a Release tree and runs it. Scenarios
// take their size from the environment: TESSERA_BENCH_SITES (default 50),
// TESSERA_BENCH_HIDDEN (hidden units of the digits MLP, default 1333: d = 99,985),
// TESSERA_BENCH_HIDDEN2 (a second hidden layer, default none),
// TESSERA_BENCH_ROUNDS (default 2), TESSERA_BENCH_LR_ROUNDS (default 20),
// TESSERA_BENCH_MODEL_DOWNLOADS (the coordinator's max_model_downloads, default its own),
// TESSERA_BENCH_SECAGG_PLUS (1: the MLP task's sessions are SecAgg+ with the default
// colluding and dropout fractions, min_sites = the number of sites; default full Bonawitz).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/e2e/process.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

// A positive integer from the environment, or `fallback` if the variable is unset; any
// other value fails the test, naming the variable.
int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr) return fallback;
  int parsed = 0;
  if (absl::SimpleAtoi(value, &parsed) && parsed > 0) return parsed;
  ADD_FAILURE() << name << "='" << value << "' is not a positive integer";
  return fallback;
}

// A live process's CPU time so far and its peak resident set (tests/e2e/process.h).
struct ProcessUsage {
  double cpu_seconds = 0;
  double peak_mib = 0;
};

absl::StatusOr<ProcessUsage> ReadUsage(pid_t pid) {
  const double cpu = CpuSeconds(pid);
  const int64_t peak = PeakResidentBytes(pid);
  if (cpu < 0 || peak < 0) {
    return absl::NotFoundError(absl::StrCat("no /proc figures for process ", pid));
  }
  return ProcessUsage{cpu, static_cast<double>(peak) / (1 << 20)};
}

// Bytes on every established TCP connection of each process, by "pid local-address":
// what the kernel acknowledged as sent and what it received.
struct SocketBytes {
  int64_t sent = 0;
  int64_t received = 0;
};
using SocketTable = std::map<std::string, SocketBytes>;

absl::StatusOr<SocketTable> ReadSockets() {
  ASSIGN_OR_RETURN(CommandResult r, RunCommand({"/bin/ss", "-tinpH", "state", "established"}));
  if (!r.status.Succeeded()) return absl::InternalError("/bin/ss: " + r.err);
  SocketTable table;
  std::string key;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    const size_t pid_at = line.find("pid=");
    if (pid_at != absl::string_view::npos) {
      // "Recv-Q Send-Q Local Peer users:((...,pid=N,fd=M))": the local address is word 3.
      std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
      const absl::string_view rest = line.substr(pid_at + 4);
      key = absl::StrCat(rest.substr(0, rest.find(',')), " ", words.size() > 2 ? words[2] : "");
      continue;
    }
    if (key.empty()) continue;
    SocketBytes& bytes = table[key];
    for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      int64_t v = 0;
      if (absl::ConsumePrefix(&word, "bytes_acked:") && absl::SimpleAtoi(word, &v)) bytes.sent = v;
      if (absl::ConsumePrefix(&word, "bytes_received:") && absl::SimpleAtoi(word, &v)) {
        bytes.received = v;
      }
    }
    key.clear();
  }
  return table;
}

// What a process's connections carried between two tables (a connection new in `after`
// counts in full).
SocketBytes BytesOf(pid_t pid, const SocketTable& before, const SocketTable& after) {
  SocketBytes total;
  const std::string prefix = absl::StrCat(pid, " ");
  for (const auto& [key, bytes] : after) {
    if (!absl::StartsWith(key, prefix)) continue;
    auto it = before.find(key);
    const SocketBytes base = it == before.end() ? SocketBytes{} : it->second;
    total.sent += bytes.sent - base.sent;
    total.received += bytes.received - base.received;
  }
  return total;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// "lo-hi", two decimals.
std::string Range(const std::vector<double>& v) {
  if (v.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return absl::StrFormat("%.2f-%.2f", *lo, *hi);
}

class FederationBench : public FederationTest {
 protected:
  struct Result {
    std::vector<double> round_seconds;        // training rounds (1..)
    std::vector<double> fit_session_seconds;  // their FIT (or FIT_EVALUATE) sessions
    double rounds_seconds = 0;                // first round started -> last committed
    double up_per_round_over_4d = 0;          // mean over sites
    double down_per_round_over_4d = 0;
    double site_cpu_ms_per_session = 0;  // mean over sites
    // The same over the sessions after training round 1 (0 with one round): what a site
    // pays once it knows its peers (its first session verifies each peer's certificate,
    // remembered per process after: docs/pki.md), without its start-up.
    double site_cpu_ms_per_later_session = 0;
    double coordinator_peak_mib = 0;
    double site_peak_mib = 0;            // the largest over sites
    std::vector<double> site_peaks_mib;  // each site's
    int sessions = 0;
    int rounds = 0;
  };

  // Starts the coordinator and `sites` on `csv_name`'s data (dataset id `dataset_id`),
  // runs `spec` to completion and measures it.
  absl::StatusOr<Result> Run(const std::vector<std::string>& sites, const std::string& csv_name,
                             const std::string& dataset_id, const v1::TaskSpec& spec,
                             size_t parameters) {
    edit_client_config_ = [dataset_id](const std::string&, v1::ClientConfig* config) {
      config->mutable_datasets(0)->set_id(dataset_id);
    };
    RETURN_IF_ERROR(MakeTestPki(sites));
    RETURN_IF_ERROR(SplitData(sites, csv_name));
    // TESSERA_BENCH_MODEL_DOWNLOADS: the coordinator's max_model_downloads (an A/B of the
    // download gate: 1024 lets every site's chunk go at once).
    if (const char* downloads = std::getenv("TESSERA_BENCH_MODEL_DOWNLOADS")) {
      const int most = std::atoi(downloads);
      edit_coordinator_config_ = [most](v1::CoordinatorConfig* config) {
        config->set_max_model_downloads(static_cast<uint32_t>(most));
      };
    }
    RETURN_IF_ERROR(StartCoordinator());
    for (const std::string& s : sites) RETURN_IF_ERROR(StartClient(s, "", {}, 3));
    for (const std::string& s : sites) RETURN_IF_ERROR(WaitClientReady(s));

    std::map<std::string, ProcessUsage> usage_before;
    for (const std::string& s : sites) {
      ASSIGN_OR_RETURN(usage_before[s], ReadUsage(site(s).process->pid()));
    }
    ASSIGN_OR_RETURN(SocketTable sockets_before, ReadSockets());
    ASSIGN_OR_RETURN(std::string id, SubmitTask(spec));
    // The sites' CPU as round 1 commits (polled every 5 ms: the next round's first
    // milliseconds may be counted before it).
    std::map<std::string, ProcessUsage> usage_after_round_1;
    if (spec.rounds() >= 2) {
      RETURN_IF_ERROR(WaitForTask(
                          id,
                          [](const v1::TaskRecord& t) {
                            return t.last_committed_round() >= 1 || IsFinished(t);
                          },
                          absl::Minutes(30))
                          .status());
      for (const std::string& s : sites) {
        ASSIGN_OR_RETURN(usage_after_round_1[s], ReadUsage(site(s).process->pid()));
      }
    }
    ASSIGN_OR_RETURN(v1::TaskRecord task, WaitForTask(id, IsFinished, absl::Minutes(30)));
    if (task.state() != v1::TASK_COMPLETED) {
      return absl::InternalError(
          absl::StrCat(id, " ended ", v1::TaskState_Name(task.state()), ": ", task.state_reason()));
    }
    ASSIGN_OR_RETURN(SocketTable sockets_after, ReadSockets());
    ASSIGN_OR_RETURN(v1::GetTaskResponse view, GetTask(id));

    Result result;
    int64_t first_started = 0;
    int64_t last_committed = 0;
    std::map<std::string, int> invited;
    std::map<std::string, int> invited_later;  // in sessions after round 1
    for (const v1::RoundRecord& r : view.rounds()) {
      for (const v1::StageAttempt& a : r.stage_attempts()) {
        ++result.sessions;
        for (const v1::SiteAnswer& s : a.sites()) {
          ++invited[s.client_id()];
          if (r.round() >= 2) ++invited_later[s.client_id()];
        }
        // The round's fit session: FIT in round 1, FIT_EVALUATE (one session per round,
        // carrying the previous model's evaluation) after.
        const bool fit = a.stage() == v1::STAGE_FIT || a.stage() == v1::STAGE_FIT_EVALUATE;
        if (r.round() >= 1 && fit && a.completed()) {
          result.fit_session_seconds.push_back(
              static_cast<double>(a.ended_unix_ms() - a.started_unix_ms()) / 1000);
        }
      }
      if (r.round() < 1) continue;  // round 0: the statistics
      ++result.rounds;
      result.round_seconds.push_back(
          static_cast<double>(r.committed_unix_ms() - r.started_unix_ms()) / 1000);
      if (first_started == 0) first_started = r.started_unix_ms();
      last_committed = r.committed_unix_ms();
    }
    result.rounds_seconds = static_cast<double>(last_committed - first_started) / 1000;
    const double vector_bytes = 4.0 * static_cast<double>(parameters);
    // Rounds as the sites see them: the statistics round moves little, so the figures are
    // per training round, over the whole task's bytes.
    const double per = vector_bytes * std::max(result.rounds, 1);
    for (const std::string& s : sites) {
      const pid_t pid = site(s).process->pid();
      const SocketBytes bytes = BytesOf(pid, sockets_before, sockets_after);
      result.up_per_round_over_4d += static_cast<double>(bytes.sent) / per / sites.size();
      result.down_per_round_over_4d += static_cast<double>(bytes.received) / per / sites.size();
      ASSIGN_OR_RETURN(ProcessUsage after, ReadUsage(pid));
      const double cpu = after.cpu_seconds - usage_before[s].cpu_seconds;
      result.site_cpu_ms_per_session += 1000 * cpu / std::max(invited[s], 1) / sites.size();
      if (auto mid = usage_after_round_1.find(s);
          mid != usage_after_round_1.end() && invited_later[s] > 0) {
        result.site_cpu_ms_per_later_session +=
            1000 * (after.cpu_seconds - mid->second.cpu_seconds) / invited_later[s] / sites.size();
      }
      result.site_peak_mib = std::max(result.site_peak_mib, after.peak_mib);
      result.site_peaks_mib.push_back(after.peak_mib);
    }
    ASSIGN_OR_RETURN(ProcessUsage coordinator_usage, ReadUsage(coordinator()->pid()));
    result.coordinator_peak_mib = coordinator_usage.peak_mib;
    return result;
  }

  static void Print(const std::string& scenario, const std::string& what, size_t sites,
                    size_t parameters, const Result& r) {
    std::printf(
        "BENCH scenario=%s what=\"%s\" sites=%zu d=%zu rounds=%d sessions=%d round_s=%s "
        "round_median_s=%.2f fit_session_s=%s rounds_total_s=%.2f up_over_4d=%.2f "
        "down_over_4d=%.2f bytes_over_4d=%.2f site_cpu_ms_per_session=%.1f "
        "site_cpu_ms_per_later_session=%.1f coordinator_peak_mib=%.1f site_peak_mib=%.1f "
        "site_peak_median_mib=%.1f\n",
        scenario.c_str(), what.c_str(), sites, parameters, r.rounds, r.sessions,
        Range(r.round_seconds).c_str(), Median(r.round_seconds),
        Range(r.fit_session_seconds).c_str(), r.rounds_seconds, r.up_per_round_over_4d,
        r.down_per_round_over_4d, (r.up_per_round_over_4d + r.down_per_round_over_4d) / 2,
        r.site_cpu_ms_per_session, r.site_cpu_ms_per_later_session, r.coordinator_peak_mib,
        r.site_peak_mib, Median(r.site_peaks_mib));
    std::fflush(stdout);
  }
};

std::vector<std::string> SiteNames(int n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (int i = 1; i <= n; ++i) names.push_back(absl::StrFormat("site-%03d", i));
  return names;
}

// The digits MLP 64-H-10 (or 64-H-H2-10) over n sites, secure aggregation as always: the
// table's "secure round" rows (H = 1333: d = 99,985) and its coordinator-memory row
// (H = 1000, H2 = 925: d = 1,000,185; a layer has at most 4,096 units).
TEST_F(FederationBench, SecureRoundsDigitsMlp) {
  const int n = EnvInt("TESSERA_BENCH_SITES", 50);
  std::vector<size_t> layers = {64, static_cast<size_t>(EnvInt("TESSERA_BENCH_HIDDEN", 1333))};
  if (const int h2 = EnvInt("TESSERA_BENCH_HIDDEN2", 0); h2 > 0) {
    layers.push_back(static_cast<size_t>(h2));
  }
  layers.push_back(10);
  const int rounds = EnvInt("TESSERA_BENCH_ROUNDS", 2);
  ASSERT_FALSE(HasFailure()) << "a TESSERA_BENCH_ variable is not a positive integer";
  v1::TaskSpec spec;
  spec.set_name("bench-digits-mlp");
  spec.mutable_dataset()->set_id("digits");
  spec.mutable_dataset()->add_features("px{0..63}");
  spec.mutable_dataset()->set_label("digit");
  v1::ModelSpec& model = *spec.mutable_model();
  model.set_kind(v1::ModelSpec::MLP);
  size_t d = 0;
  for (size_t i = 1; i < layers.size(); ++i) {
    if (i + 1 < layers.size()) model.add_hidden_layers(static_cast<uint32_t>(layers[i]));
    d += layers[i - 1] * layers[i] + layers[i];
  }
  model.set_num_classes(10);
  v1::TrainingSpec& training = *spec.mutable_training();
  training.set_local_epochs(1);
  training.set_batch_size(32);
  training.set_learning_rate(0.05);
  spec.set_rounds(rounds);
  spec.set_min_clients(static_cast<uint32_t>(n));
  spec.set_seed(1);
  spec.set_round_deadline_seconds(600);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(120);
  const char* secagg_plus = std::getenv("TESSERA_BENCH_SECAGG_PLUS");
  const bool plus = secagg_plus != nullptr && std::string_view(secagg_plus) == "1";
  if (plus) {
    spec.mutable_secure_aggregation()->mutable_secagg_plus()->set_min_sites(
        static_cast<uint32_t>(n));
  }
  ASSERT_OK_AND_ASSIGN(Result r, Run(SiteNames(n), "digits", "digits", spec, d));
  Print("secure-mlp",
        absl::StrCat("digits MLP ", absl::StrJoin(layers, "-"), ", fit + evaluate",
                     plus ? ", SecAgg+" : ""),
        n, d, r);
}

// The demo's logistic regression (deploy/examples/breast_cancer_logistic.textproto, 31
// parameters) over the three demo sites for TESSERA_BENCH_LR_ROUNDS rounds: the table's
// "time in rounds" and site-memory rows.
TEST_F(FederationBench, LogisticRegressionRounds) {
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(EnvInt("TESSERA_BENCH_LR_ROUNDS", 20));
  ASSERT_FALSE(HasFailure()) << "TESSERA_BENCH_LR_ROUNDS is not a positive integer";
  ASSERT_OK_AND_ASSIGN(Result r, Run(Sites(), "breast_cancer_wisconsin", "breast_cancer", spec,
                                     kExampleModelParameters));
  Print("logistic", "breast cancer logistic regression, 3 sites", Sites().size(),
        kExampleModelParameters, r);
}

}  // namespace
}  // namespace tessera::e2e
