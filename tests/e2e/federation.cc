#include "tests/e2e/federation.h"

#include <sys/stat.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"

namespace tessera::e2e {
namespace {

constexpr absl::Duration kRpcTimeout = absl::Seconds(20);
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);
constexpr char kDatasetId[] = "breast_cancer";

// The fixture's operator calls; sanitizer runs are slower.
void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kRpcTimeout * TimeoutMultiplier()));
}

absl::Status FromGrpc(const grpc::Status& st, const std::string& what) {
  if (st.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                      absl::StrCat(what, ": ", st.error_message()));
}

// Runs a command that must succeed; the error carries its output.
absl::Status RunOk(const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv));
  if (r.status.Succeeded()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), ": ", r.status.ToString(),
                                          "\nstdout:\n", r.out, "\nstderr:\n", r.err));
}

absl::Status WriteText(const std::string& path, const google::protobuf::Message& message) {
  return common::WriteFileAtomic(path, common::ToTextProto(message));
}

}  // namespace

std::string CoordinatorBinary() { return TESSERA_COORDINATOR_BIN; }
std::string ClientBinary() { return TESSERA_CLIENT_BIN; }
std::string FaultyClientBinary() { return TESSERA_FAULTY_CLIENT_BIN; }
std::string FaultyCoordinatorBinary() { return TESSERA_FAULTY_COORDINATOR_BIN; }
std::string ConsoleBinary() { return TESSERA_CONSOLE_BIN; }
std::string SourcePath(const std::string& relative) {
  return absl::StrCat(TESSERA_SOURCE_DIR, "/", relative);
}

std::string ExampleTaskPath() {
  return SourcePath("deploy/examples/breast_cancer_logistic.textproto");
}

bool IsFinished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

absl::StatusOr<v1::TaskSpec> LoadExampleTask() {
  v1::TaskSpec spec;
  RETURN_IF_ERROR(common::LoadProtoFile(ExampleTaskPath(), &spec));
  return spec;
}

FederationTest::FederationTest()
    : coordinator_dir_(temp_.File("coordinator")),
      data_dir_(temp_.File("coordinator/db")),
      coordinator_config_path_(temp_.File("coordinator/config.textproto")),
      console_config_path_(temp_.File("operator-console.textproto")) {}

FederationTest::~FederationTest() = default;

void FederationTest::TearDown() {
  // Our own idle connection would hold the coordinator's graceful stop for its whole grace
  // period: an idle gRPC client only reads the GOAWAY when its 5 s backup poller runs.
  operator_channel_.reset();
  // Clients first, so none is left retrying against a coordinator that is gone.
  std::vector<Process*> running;
  for (auto& [name, s] : sites_) {
    if (s.process != nullptr) running.push_back(s.process.get());
  }
  if (coordinator_ != nullptr) running.push_back(coordinator_.get());
  for (Process* p : running) {
    if (!p->Running()) continue;
    ExitStatus how = p->Terminate();
    EXPECT_TRUE(how.Succeeded()) << p->name() << " (log " << p->log_path()
                                 << ") did not stop cleanly on SIGTERM: " << how.ToString();
  }
  if (HasFailure()) {
    std::vector<Process*> all;
    for (auto& p : old_coordinators_) all.push_back(p.get());
    for (Process* p : running) all.push_back(p);
    for (Process* p : all) {
      std::fprintf(stderr, "---- %s: last lines of %s\n%s\n", p->name().c_str(),
                   p->log_path().c_str(), p->LogTail(30).c_str());
    }
  }
}

absl::Status FederationTest::MakeTestPki(const std::vector<std::string>& sites) {
  std::string dir = temp_.File("pki");
  RETURN_IF_ERROR(common::MakeDirectories(dir, 0700));
  ASSIGN_OR_RETURN(pki_, testing::TestPki::Create(dir));
  ASSIGN_OR_RETURN(coordinator_tls_, pki_->IssueNode("coordinator", crypto::Role::kCoordinator));
  ASSIGN_OR_RETURN(operator_tls_, pki_->IssueNode("operator", crypto::Role::kOperator));
  for (const std::string& name : sites) {
    ASSIGN_OR_RETURN(sites_[name].tls, pki_->IssueNode(name, crypto::Role::kInstitution));
  }
  return absl::OkStatus();
}

absl::Status FederationTest::MakeCliPki(const std::vector<std::string>& sites) {
  const std::string tessera = ConsoleBinary();
  const std::string ca_dir = temp_.File("ca");
  const std::string ca_cert = ca_dir + "/ca.crt";
  RETURN_IF_ERROR(RunOk({tessera, "pki", "init", "--dir", ca_dir, "--federation", "e2e"}));

  RETURN_IF_ERROR(
      RunOk({tessera, "pki", "keygen", "--name", "coordinator", "--out-dir", coordinator_dir_}));
  RETURN_IF_ERROR(RunOk({tessera, "pki", "sign", "--ca-dir", ca_dir, "--csr",
                         coordinator_dir_ + "/coordinator.csr", "--role", "coordinator", "--san",
                         "127.0.0.1,localhost"}));
  coordinator_tls_.set_ca_cert(ca_cert);
  coordinator_tls_.set_cert(coordinator_dir_ + "/coordinator.crt");
  coordinator_tls_.set_key(coordinator_dir_ + "/coordinator.key");

  const std::string operator_dir = temp_.File("operator");
  RETURN_IF_ERROR(
      RunOk({tessera, "pki", "keygen", "--name", "operator", "--out-dir", operator_dir}));
  RETURN_IF_ERROR(RunOk({tessera, "pki", "sign", "--ca-dir", ca_dir, "--csr",
                         operator_dir + "/operator.csr", "--role", "operator"}));
  operator_tls_.set_ca_cert(ca_cert);
  operator_tls_.set_cert(operator_dir + "/operator.crt");
  operator_tls_.set_key(operator_dir + "/operator.key");

  for (const std::string& name : sites) {
    // At a real site keygen runs there; only the CSR travels to the operator.
    const std::string dir = temp_.File(name);
    RETURN_IF_ERROR(RunOk({ClientBinary(), "keygen", "--name", name, "--out-dir", dir}));
    RETURN_IF_ERROR(RunOk({tessera, "pki", "sign", "--ca-dir", ca_dir, "--csr",
                           absl::StrCat(dir, "/", name, ".csr"), "--role", "institution"}));
    v1::TlsFiles& tls = sites_[name].tls;
    tls.set_ca_cert(ca_cert);
    tls.set_cert(absl::StrCat(dir, "/", name, ".crt"));
    tls.set_key(absl::StrCat(dir, "/", name, ".key"));
  }
  return absl::OkStatus();
}

absl::Status FederationTest::SplitData(const std::vector<std::string>& sites,
                                       const std::string& csv_name) {
  if (sites.empty()) return absl::InvalidArgumentError("no sites");
  std::set<int> test_rows;
  {
    std::istringstream in(
        ReadFileOrEmpty(SourcePath("deploy/data/splits/" + csv_name + ".test_rows.txt")));
    std::string line;
    while (std::getline(in, line)) {
      int row;
      if (absl::SimpleAtoi(line, &row)) test_rows.insert(row);
    }
  }
  std::istringstream csv(ReadFileOrEmpty(SourcePath("deploy/data/" + csv_name + ".csv")));
  std::string header;
  if (test_rows.empty() || !std::getline(csv, header)) {
    return absl::NotFoundError(
        absl::StrCat("deploy/data/", csv_name, ".csv or its split file is missing or empty"));
  }
  std::vector<std::string> train(sites.size(), header + "\n");
  std::vector<std::string> test(sites.size(), header + "\n");
  std::vector<int> train_count(sites.size(), 0);
  std::vector<int> test_count(sites.size(), 0);
  size_t n_train = 0;
  size_t n_test = 0;
  std::string line;
  for (int row = 0; std::getline(csv, line); ++row) {
    if (line.empty()) continue;
    if (test_rows.count(row) > 0) {
      size_t s = n_test++ % sites.size();
      test[s] += line + "\n";
      ++test_count[s];
    } else {
      size_t s = n_train++ % sites.size();
      train[s] += line + "\n";
      ++train_count[s];
    }
  }
  for (size_t i = 0; i < sites.size(); ++i) {
    Site& s = sites_[sites[i]];
    s.dir = temp_.File(sites[i]);
    RETURN_IF_ERROR(common::MakeDirectories(s.dir, 0700));
    s.train_csv = s.dir + "/train.csv";
    s.test_csv = s.dir + "/test.csv";
    s.train_rows = train_count[i];
    s.test_rows = test_count[i];
    RETURN_IF_ERROR(common::WriteFileAtomic(s.train_csv, train[i]));
    RETURN_IF_ERROR(common::WriteFileAtomic(s.test_csv, test[i]));
  }
  return absl::OkStatus();
}

absl::Status FederationTest::WriteCoordinatorConfig() {
  RETURN_IF_ERROR(common::MakeDirectories(coordinator_dir_, 0700));
  v1::CoordinatorConfig config;
  config.set_listen_address("127.0.0.1:0");  // each start passes --listen
  config.set_data_dir(data_dir_);
  *config.mutable_tls() = coordinator_tls_;
  if (edit_coordinator_config_) edit_coordinator_config_(&config);
  return WriteText(coordinator_config_path_, config);
}

absl::Status FederationTest::WriteConsoleConfig() {
  v1::ConsoleConfig config;
  config.set_coordinator_address(address_);
  *config.mutable_tls() = operator_tls_;
  return WriteText(console_config_path_, config);
}

namespace {

// Starts `argv` with env(1) and `env`, which then applies to that daemon only (the test's
// own environment stays). True if `env` sets a TESSERA_TEST_* fault.
bool EnvPrefix(const std::map<std::string, std::string>& env, std::vector<std::string>* argv) {
  bool faulty = false;
  if (env.empty()) return false;
  argv->push_back("/usr/bin/env");
  for (const auto& [key, value] : env) {
    argv->push_back(absl::StrCat(key, "=", value));
    faulty = faulty || key.starts_with("TESSERA_TEST_");
  }
  return faulty;
}

}  // namespace

absl::Status FederationTest::StartCoordinator(const std::string& listen,
                                              const std::map<std::string, std::string>& env) {
  if (coordinator_ != nullptr && coordinator_->Running()) {
    return absl::FailedPreconditionError("a coordinator is already running");
  }
  if (coordinator_starts_ == 0) RETURN_IF_ERROR(WriteCoordinatorConfig());
  ++coordinator_starts_;
  if (coordinator_ != nullptr) old_coordinators_.push_back(std::move(coordinator_));
  const std::string ready = coordinator_ready_file();
  std::vector<std::string> argv;
  if (command_prefix_) argv = command_prefix_("coordinator");
  const bool faulty = EnvPrefix(env, &argv);
  argv.insert(argv.end(), {faulty ? FaultyCoordinatorBinary() : CoordinatorBinary(), "--config",
                           coordinator_config_path_, "--listen", listen, "--ready-file", ready});
  ASSIGN_OR_RETURN(coordinator_, Process::Start(argv, absl::StrCat(coordinator_dir_, "/log-",
                                                                   coordinator_starts_)));
  ASSIGN_OR_RETURN(std::string bound, WaitForFile(ready, *coordinator_, kStartTimeout));
  address_ = std::string(absl::StripSuffix(bound, "\n"));
  size_t colon = address_.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address_.substr(colon + 1), &port_) ||
      port_ <= 0) {
    return absl::InternalError(absl::StrCat("ready file ", ready, " holds '", bound, "'"));
  }
  operator_channel_.reset();
  return WriteConsoleConfig();
}

absl::Status FederationTest::StopCoordinator() {
  if (coordinator_ == nullptr) return absl::FailedPreconditionError("no coordinator");
  operator_channel_.reset();  // see TearDown
  RETURN_IF_ERROR(coordinator_->Kill(SIGTERM));
  ASSIGN_OR_RETURN(ExitStatus how, coordinator_->Wait(kStopTimeout));
  if (!how.Succeeded()) {
    return absl::InternalError(absl::StrCat("coordinator stopped with ", how.ToString(),
                                            "; its log ends with:\n", coordinator_->LogTail()));
  }
  return absl::OkStatus();
}

absl::Status FederationTest::StartClient(const std::string& name, const std::string& address,
                                         const std::map<std::string, std::string>& env,
                                         uint32_t min_cohort) {
  Site& s = sites_[name];
  s.name = name;
  if (s.tls.cert().empty() || s.train_csv.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(name, " has no certificate or no data"));
  }
  if (s.process != nullptr && s.process->Running()) {
    return absl::FailedPreconditionError(absl::StrCat(name, " is already running"));
  }
  s.config_path = s.dir + "/config.textproto";
  if (s.ready_path.empty()) s.ready_path = s.dir + "/ready";
  if (s.store_dir.empty()) s.store_dir = s.dir + "/store";
  // A restart must not be taken as ready on the strength of the previous daemon's file.
  if (std::remove(s.ready_path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
    return absl::InternalError(absl::StrCat("cannot remove ", s.ready_path));
  }
  v1::ClientConfig config;
  config.set_coordinator_address(address.empty() ? address_ : address);
  *config.mutable_tls() = s.tls;
  v1::LocalDataset* data = config.add_datasets();
  data->set_id(kDatasetId);
  data->set_train_csv(s.train_csv);
  data->set_test_csv(s.test_csv);
  *config.mutable_policy() = s.policy;
  config.mutable_policy()->set_min_cohort(min_cohort);
  config.mutable_retry()->set_initial_backoff_ms(100);
  config.mutable_retry()->set_max_backoff_ms(500);
  config.set_ready_file(s.ready_path);
  config.set_data_dir(s.store_dir);
  if (edit_client_config_) edit_client_config_(name, &config);
  RETURN_IF_ERROR(WriteText(s.config_path, config));
  std::vector<std::string> argv;
  if (command_prefix_) argv = command_prefix_(name);
  const bool faulty = EnvPrefix(env, &argv);
  // A site with an injected fault runs the test build of the daemon (the same RunClient
  // with a sink that stops it at the chosen step); tessera-client itself has no such hook.
  if (faulty) {
    argv.insert(argv.end(), {FaultyClientBinary(), "--config", s.config_path});
  } else {
    argv.insert(argv.end(), {ClientBinary(), "run", "--config", s.config_path});
  }
  ASSIGN_OR_RETURN(s.process, Process::Start(argv, s.dir + "/log"));
  return absl::OkStatus();
}

absl::Status FederationTest::WaitClientReady(const std::string& name) {
  Site& s = sites_[name];
  if (s.process == nullptr) return absl::FailedPreconditionError(name + " was not started");
  ASSIGN_OR_RETURN(std::string id, WaitForFile(s.ready_path, *s.process, kStartTimeout));
  if (id != name + "\n") {
    return absl::InternalError(absl::StrCat(s.ready_path, " holds '", id, "', not ", name));
  }
  return absl::OkStatus();
}

absl::Status FederationTest::StartClients(const std::vector<std::string>& sites) {
  for (const std::string& name : sites) RETURN_IF_ERROR(StartClient(name));
  for (const std::string& name : sites) RETURN_IF_ERROR(WaitClientReady(name));
  return absl::OkStatus();
}

absl::Status FederationTest::StopClient(const std::string& name) {
  Site& s = sites_[name];
  if (s.process == nullptr) return absl::FailedPreconditionError(name + " was not started");
  RETURN_IF_ERROR(s.process->Kill(SIGTERM));
  ASSIGN_OR_RETURN(ExitStatus how, s.process->Wait(kStopTimeout));
  if (!how.Succeeded()) {
    return absl::InternalError(absl::StrCat(name, " stopped with ", how.ToString(),
                                            "; its log ends with:\n", s.process->LogTail()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CommandResult> FederationTest::Console(const std::vector<std::string>& words,
                                                      const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ConsoleBinary()};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.push_back("--config");
  argv.push_back(console_config_path_);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> FederationTest::ChannelAs(const v1::TlsFiles& tls,
                                                                         crypto::Role role) {
  if (address_.empty()) return absl::FailedPreconditionError("no coordinator was started");
  ASSIGN_OR_RETURN(crypto::TlsMaterial material, crypto::LoadTlsMaterial(tls, role, absl::Now()));
  return crypto::MakeChannel(address_, "", material);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> FederationTest::OperatorChannel() {
  if (operator_channel_ == nullptr) {
    ASSIGN_OR_RETURN(operator_channel_, ChannelAs(operator_tls_, crypto::Role::kOperator));
  }
  return operator_channel_;
}

absl::StatusOr<std::string> FederationTest::SubmitTask(const v1::TaskSpec& spec) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, OperatorChannel());
  auto stub = v1::Admin::NewStub(channel);
  v1::SubmitTaskRequest request;
  *request.mutable_spec() = spec;
  v1::SubmitTaskResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(FromGrpc(stub->SubmitTask(&ctx, request, &response), "SubmitTask"));
  return response.task_id();
}

absl::StatusOr<v1::GetTaskResponse> FederationTest::GetTask(const std::string& task_id) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, OperatorChannel());
  auto stub = v1::Admin::NewStub(channel);
  v1::GetTaskRequest request;
  request.set_task_id(task_id);
  v1::GetTaskResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(FromGrpc(stub->GetTask(&ctx, request, &response), "GetTask"));
  return response;
}

absl::StatusOr<std::vector<v1::TaskRecord>> FederationTest::ListTasks() {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, OperatorChannel());
  auto stub = v1::Admin::NewStub(channel);
  v1::ListTasksResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(FromGrpc(stub->ListTasks(&ctx, v1::ListTasksRequest(), &response), "ListTasks"));
  return std::vector<v1::TaskRecord>(response.tasks().begin(), response.tasks().end());
}

absl::StatusOr<std::vector<v1::ClientRecord>> FederationTest::ListClients() {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, OperatorChannel());
  auto stub = v1::Admin::NewStub(channel);
  v1::ListClientsResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  RETURN_IF_ERROR(
      FromGrpc(stub->ListClients(&ctx, v1::ListClientsRequest(), &response), "ListClients"));
  return std::vector<v1::ClientRecord>(response.clients().begin(), response.clients().end());
}

absl::StatusOr<v1::TaskRecord> FederationTest::WaitForTask(
    const std::string& task_id, const std::function<bool(const v1::TaskRecord&)>& done,
    absl::Duration timeout) {
  timeout *= TimeoutMultiplier();  // sanitizer runs are slower
  const absl::Time deadline = absl::Now() + timeout;
  v1::TaskRecord last;
  while (true) {
    ASSIGN_OR_RETURN(v1::GetTaskResponse response, GetTask(task_id));
    last = response.task();
    if (done(last)) return last;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          task_id, " did not reach the expected state within ", absl::FormatDuration(timeout),
          "; last: ", v1::TaskState_Name(last.state()), " round ", last.last_committed_round(),
          "; coordinator log ends with:\n", coordinator_ ? coordinator_->LogTail() : ""));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::StatusOr<std::unique_ptr<coordinator::Store>> FederationTest::OpenStore() {
  if (coordinator_ != nullptr && coordinator_->Running()) {
    return absl::FailedPreconditionError("the coordinator still runs and holds its store");
  }
  return coordinator::OpenRocksDbStore(data_dir_);
}

}  // namespace tessera::e2e
