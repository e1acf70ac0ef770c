// The federation of tests/e2e/federation.h across network namespaces (tests/netns/topology.h):
// the coordinator on its own host, each site on its own, and between each site and the
// coordinator a fault relay (tessera-fault-relay, tests/testing/fault_relay.h) in the
// network namespace, so that every site's link can be faulted on its own:
//
//   site s<i>  ──veth──  bridge (relay for s<i>: 10.A.B.1:P_i → 10.A.B.2:port)  ──veth──
//   coordinator
//
// The sites dial their relay and check the coordinator's certificate for the coordinator's
// address (ClientConfig.server_name; its only SAN is that address). Each daemon runs with
// `ip netns exec` in its host's namespace; each site has its own directory (mode 0700) with
// its data, config, log and store. The operator (the test) reaches the coordinator through
// the test's leg into the bridge.
//
// Every site holds the demo data under two dataset ids, kDataset and kBaselineDataset (the
// same files): a task on the second is the no-fault twin of a task on the first (same spec,
// seed and cohort, so the same model), which the once-only rule would refuse on one id.
//
// SetUp skips (GTEST_SKIP with the reason) where namespaces cannot be made. TESSERA_NETNS_LONG=1
// makes long() true: more rounds and a bigger model.
#ifndef TESSERA_TESTS_NETNS_NETNS_FEDERATION_H_
#define TESSERA_TESTS_NETNS_NETNS_FEDERATION_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/admin.pb.h"
#include "proto/task.pb.h"
#include "tests/e2e/federation.h"
#include "tests/netns/topology.h"
#include "tests/testing/fault_relay.h"

namespace tessera::netns {

inline constexpr char kDataset[] = "breast_cancer";
inline constexpr char kBaselineDataset[] = "breast_cancer_twin";

// Four hospitals: with four, a secure session's threshold (3) lets one drop out.
const std::vector<std::string>& NetnsSites();

// tessera-fault-relay, as CMake passed it.
std::string RelayBinary();

// An MLP on the demo's 30 features (2 classes) on `dataset`: short runs `rounds` (default 3)
// with 256 hidden units (8,450 parameters), long runs 8 rounds (or `rounds` + 5) with 512
// and 256 (147,714 parameters); step deadlines of `step_deadline_seconds`.
v1::TaskSpec NetnsTask(const std::string& dataset, bool long_run, uint32_t min_clients,
                       uint32_t step_deadline_seconds, uint32_t rounds = 3);
// The same with a model big enough for a 10 Mbit/s link to matter: 4,096 hidden units
// (135,170 parameters) short, 2,048 and 512 (1,113,602) long.
v1::TaskSpec NetnsBigTask(const std::string& dataset, bool long_run, uint32_t min_clients);

class NetnsFederationTest : public e2e::FederationTest {
 protected:
  struct TaskRun {
    v1::GetTaskResponse final;  // the task and every round, at the end
    absl::Duration wall;        // submit → terminal state
    int sessions = 0;           // secure-aggregation sessions over all rounds
    // What the relays forwarded (TLS records) and reset while the task ran, over all sites.
    int64_t bytes_up = 0;  // sites → coordinator
    int64_t bytes_down = 0;
    int64_t resets = 0;
    int polls = 0;                // GetTask calls while it ran
    absl::Duration slowest_poll;  // the longest of them
  };

  void SetUp() override;
  void TearDown() override;

  // PKI (the coordinator's certificate for its namespace address), data, the coordinator,
  // one relay per site (no faults yet: scenarios send commands), then every site through
  // its relay with policy min_cohort `min_cohort`; waits until all are ready.
  absl::Status StartFederation(uint32_t min_cohort = 3);

  // Starts the site's relay in the network namespace (forwarding to the coordinator), with
  // ParseDirectionFaults text for each direction and a ParseRelaySchedule schedule.
  absl::Status StartRelay(const std::string& site, const std::string& up = "",
                          const std::string& down = "", const std::string& schedule = "",
                          int max_resets = -1);
  // Appends a command line to the site relay's control file and waits until the relay has
  // executed it.
  absl::Status RelayCommand(const std::string& site, const std::string& line);
  // The site relay's counts (its stats file).
  absl::StatusOr<testing::RelayStats> RelayCounts(const std::string& site);

  // Submits `spec` and waits (up to `timeout`) for a terminal state, calling `during` with
  // every poll's answer (a scenario's faults) — polls every few milliseconds.
  absl::StatusOr<TaskRun> RunTask(
      const v1::TaskSpec& spec, absl::Duration timeout,
      const std::function<void(const v1::GetTaskResponse&)>& during = nullptr);

  // Checks that the sites kept apart: no site daemon has a file of another site's
  // directory open (/proc/PID/fd, while they run); each site's store is in its own
  // directory (mode 0700),
  // and holds a contribution record (statistics, FIT), from its own dataset ids, for every
  // round of `task` whose participants name that site and otherwise only for rounds that
  // dropped it at or after its masked input; no site directory holds a file named after
  // another site. Stops the sites first (the stores are RocksDB).
  void ExpectSitesKeptApart(const v1::GetTaskResponse& task);

  // One line for the docs table and the log: "NETNS_RESULT scenario=... ".
  void Report(const std::string& scenario, const std::string& injected, const TaskRun& run);

  bool long_run() const { return long_run_; }
  Topology& topology() { return *topology_; }

 private:
  struct Relay {
    std::unique_ptr<e2e::Process> process;
    std::string address;
    std::string control;
    std::string stats;
    int commands = 0;
  };
  std::unique_ptr<Topology> topology_;
  std::map<std::string, Relay> relays_;
  bool long_run_ = false;
};

}  // namespace tessera::netns

#endif  // TESSERA_TESTS_NETNS_NETNS_FEDERATION_H_
