// The end-to-end fixture: a federation of real processes on loopback in a fresh temporary
// directory. It makes the PKI (with TestPki, or with the `tessera` / `tessera-client` CLI
// the way an operator does), splits the demo data set over the sites, writes every config,
// starts the coordinator on an OS-chosen port (read back from its ready file) and the
// client daemons, and talks to the coordinator as the operator (admin RPCs or the console).
//
// Waiting is done on ready files and on conditions polled with a deadline, never on fixed
// sleeps. Ports come from the OS. On failure, TearDown prints the tail of every daemon's log;
// TESSERA_KEEP_TEST_DIRS=1 keeps the directory for a post-mortem.
#ifndef TESSERA_TESTS_E2E_FEDERATION_H_
#define TESSERA_TESTS_E2E_FEDERATION_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "coordinator/store.h"
#include "crypto/pki.h"
#include "gtest/gtest.h"
#include "proto/admin.pb.h"
#include "proto/config.pb.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "tests/e2e/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tessera::e2e {

// The programs under test and the source tree, as CMake passed them.
std::string CoordinatorBinary();
std::string ClientBinary();
std::string ConsoleBinary();
// tessera-client-under-test: the site daemon with the faults of TESSERA_TEST_* variables.
std::string FaultyClientBinary();
// tessera-coordinator-under-test: the coordinator with the faults of TESSERA_TEST_* variables.
std::string FaultyCoordinatorBinary();
// `relative` under the source tree: "deploy/examples/breast_cancer_logistic.textproto".
std::string SourcePath(const std::string& relative);

// deploy/examples/breast_cancer_logistic.textproto: 30 rounds, min_clients 3, 30 features.
std::string ExampleTaskPath();
absl::StatusOr<v1::TaskSpec> LoadExampleTask();

// True once the task completed, failed or was cancelled.
bool IsFinished(const v1::TaskRecord& task);

// The three hospitals of the demo.
inline const std::vector<std::string>& Sites() {
  static const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c"};
  return kSites;
}

// The demo data set: 569 rows, of which the 114 listed in the split file are test rows.
inline constexpr int kTrainRows = 455;
inline constexpr int kTestRows = 114;
// Logistic regression on 30 features: weights and an intercept.
inline constexpr size_t kExampleModelParameters = 31;

class FederationTest : public ::testing::Test {
 protected:
  // One institution's files and daemon.
  struct Site {
    std::string name;
    std::string dir;
    v1::TlsFiles tls;
    std::string train_csv;
    std::string test_csv;
    int train_rows = 0;
    int test_rows = 0;
    std::string config_path;
    std::string ready_path;  // <dir>/ready unless the test set another before StartClient
    // The site store's directory (config data_dir); StartClient sets <dir>/store when empty.
    // A test may point a restart elsewhere (a site that lost its store).
    std::string store_dir;
    // Policy settings StartClient writes into the site's config (merged, then min_cohort
    // set on top).
    v1::LocalPolicy policy;
    std::unique_ptr<Process> process;
  };

  FederationTest();
  ~FederationTest() override;

  // Stops every daemon still running (clients first) with SIGTERM and expects each to exit
  // 0; prints their logs' tails if the test failed.
  void TearDown() override;

  // PKI with TestPki: CA, "coordinator" (SANs 127.0.0.1, localhost), "operator", and an
  // institution certificate for each of `sites`.
  absl::Status MakeTestPki(const std::vector<std::string>& sites = Sites());
  // The same PKI through the CLI: `tessera pki init`, `tessera pki keygen` (coordinator,
  // operator), `tessera-client keygen` (each site, in its own directory) and
  // `tessera pki sign --role ...`. Every command must exit 0.
  absl::Status MakeCliPki(const std::vector<std::string>& sites = Sites());

  // Gives each site an equal share of the training rows and of the test rows (round-robin
  // over each) of deploy/data/<csv_name>.csv, whose test rows are listed in
  // deploy/data/splits/<csv_name>.test_rows.txt: by default the demo CSV, a third each to
  // the three demo sites, as deploy/demo.sh does.
  absl::Status SplitData(const std::vector<std::string>& sites = Sites(),
                         const std::string& csv_name = "breast_cancer_wisconsin");

  // Writes the coordinator's config (once) and starts it listening on `listen`, with `env`
  // added to its environment; waits for its ready file and sets address() and port(). Each
  // start logs to its own file. A TESSERA_TEST_* variable (TESSERA_TEST_CRASH_AT, ...)
  // starts the test build of the daemon (FaultyCoordinatorBinary) instead.
  absl::Status StartCoordinator(const std::string& listen = "127.0.0.1:0",
                                const std::map<std::string, std::string>& env = {});
  // SIGTERM; the coordinator must exit 0 within 30 s.
  absl::Status StopCoordinator();

  // Writes `site`'s client config (coordinator at `address`, default address(); a short
  // retry policy; policy.min_cohort = `min_cohort`; its site store in the site's store_dir,
  // <site dir>/store unless the test set another) and starts its daemon with `env` added to
  // its environment. The ready file of an earlier start is removed first, so that
  // WaitClientReady waits for this daemon's own Hello. A TESSERA_TEST_* variable (a
  // fault: TESSERA_TEST_EXIT_BEFORE, TESSERA_TEST_KILL_BEFORE_SEND) starts the test build of
  // the daemon (FaultyClientBinary) instead. Needs the site's TLS files and data.
  absl::Status StartClient(const std::string& site, const std::string& address = "",
                           const std::map<std::string, std::string>& env = {},
                           uint32_t min_cohort = 3);
  // Waits for the site's ready file; checks it holds the site's id.
  absl::Status WaitClientReady(const std::string& site);
  // StartClient for each, then WaitClientReady for each.
  absl::Status StartClients(const std::vector<std::string>& sites = Sites());
  // SIGTERM to the site's daemon; it must exit 0 within 30 s (INTERNAL with its log tail
  // otherwise). Its store may then be opened by the test.
  absl::Status StopClient(const std::string& site);

  // `tessera <words...> --config <console config> <args...>`.
  absl::StatusOr<CommandResult> Console(const std::vector<std::string>& words,
                                        const std::vector<std::string>& args = {});

  // A channel to the coordinator presenting `tls`, loaded as a certificate of `role`.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelAs(const v1::TlsFiles& tls,
                                                           crypto::Role role);
  // Admin RPCs as the operator.
  absl::StatusOr<std::string> SubmitTask(const v1::TaskSpec& spec);
  absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& task_id);
  absl::StatusOr<std::vector<v1::TaskRecord>> ListTasks();
  absl::StatusOr<std::vector<v1::ClientRecord>> ListClients();
  // Polls GetTask until `done(task)`; DEADLINE_EXCEEDED (with the coordinator's log tail)
  // after `timeout`.
  absl::StatusOr<v1::TaskRecord> WaitForTask(const std::string& task_id,
                                             const std::function<bool(const v1::TaskRecord&)>& done,
                                             absl::Duration timeout = absl::Seconds(120));

  // The coordinator's RocksDB store; only while no coordinator runs (RocksDB's lock).
  absl::StatusOr<std::unique_ptr<coordinator::Store>> OpenStore();

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  Process* coordinator() { return coordinator_.get(); }
  // The ready file of the coordinator's last start.
  std::string coordinator_ready_file() const {
    return absl::StrCat(coordinator_dir_, "/ready-", coordinator_starts_);
  }
  // The ready file the coordinator's next start will write (for a thread that watches it
  // while the start runs; coordinator_ready_file() changes during StartCoordinator).
  std::string next_coordinator_ready_file() const {
    return absl::StrCat(coordinator_dir_, "/ready-", coordinator_starts_ + 1);
  }
  Site& site(const std::string& name) { return sites_[name]; }
  const testing::TempDir& temp() const { return temp_; }
  testing::TestPki* pki() { return pki_.get(); }
  const v1::TlsFiles& coordinator_tls() const { return coordinator_tls_; }
  const v1::TlsFiles& operator_tls() const { return operator_tls_; }
  const std::string& data_dir() const { return data_dir_; }
  // The coordinator's config file (written by the first StartCoordinator).
  const std::string& coordinator_config_path() const { return coordinator_config_path_; }

 private:
  absl::Status WriteCoordinatorConfig();
  absl::Status WriteConsoleConfig();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> OperatorChannel();

  // Declared first: destroyed last, after every process that writes into it has ended.
  testing::TempDir temp_;
  std::unique_ptr<testing::TestPki> pki_;
  v1::TlsFiles coordinator_tls_;
  v1::TlsFiles operator_tls_;
  std::string coordinator_dir_;
  std::string data_dir_;
  std::string coordinator_config_path_;
  std::string console_config_path_;
  int coordinator_starts_ = 0;
  std::string address_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> operator_channel_;
  // Every coordinator ever started by the test (a restart adds one); the last is current.
  std::vector<std::unique_ptr<Process>> old_coordinators_;
  std::unique_ptr<Process> coordinator_;
  std::map<std::string, Site> sites_;

 protected:
  // Set by a test before the daemons start: edits the coordinator's config when it is first
  // written, and each site's config (with the site's name) before its daemon starts (the
  // monitoring tests add metrics listeners and log options).
  std::function<void(v1::CoordinatorConfig*)> edit_coordinator_config_;
  std::function<void(const std::string& site, v1::ClientConfig*)> edit_client_config_;
  // Set by a test before the daemons start: words put before each daemon's command line,
  // by whom it starts ("coordinator" or the site's name). The network-namespace suite
  // (tests/netns) runs each daemon on its own host with `ip netns exec NAME`.
  std::function<std::vector<std::string>(const std::string& who)> command_prefix_;
};

}  // namespace tessera::e2e

#endif  // TESSERA_TESTS_E2E_FEDERATION_H_
