// The daemon's control socket (client/control_server.h) on a real Unix socket: its file and
// directory modes, the peer-uid check (a child that becomes `nobody` is refused even when
// the file system would let it in), the approval queue through gRPC, stale and busy
// sockets; and the policy reload (client/config_reload.h). Names carry "Approv" or "Policy".

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "client/approvals.h"
#include "client/config_reload.h"
#include "client/control_server.h"
#include "client/site_store.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/site_control.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::TaskSpec Spec() {
  v1::TaskSpec spec;
  spec.set_name("heart-logistic");
  spec.mutable_dataset()->set_id("heart");
  spec.mutable_dataset()->add_features("age");
  spec.mutable_dataset()->set_label("disease");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_secure_aggregation()->set_clip(1);
  spec.set_rounds(3);
  spec.set_min_clients(3);
  return spec;
}

std::string Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "missing";
  char out[8];
  std::snprintf(out, sizeof(out), "%04o", st.st_mode & 07777);
  return out;
}

class ApprovalControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.File("run");  // created by the server, 0700
    socket_ = dir_ + "/control.sock";
    config_.add_datasets()->set_id("heart");
    config_.mutable_datasets(0)->set_test_csv("heart_test.csv");
    config_.mutable_policy()->set_require_approval(true);
  }

  absl::Status Start() {
    ControlHandlers handlers;
    handlers.approvals = &queue_;
    handlers.config = [this] { return config_; };
    handlers.reload = []() -> absl::StatusOr<v1::ReloadPolicyResponse> {
      return absl::InvalidArgumentError("site.textproto:3: policy.max_rounds: bad");
    };
    ASSIGN_OR_RETURN(server_, ControlServer::Start(socket_, handlers));
    return absl::OkStatus();
  }

  std::unique_ptr<v1::SiteControl::Stub> Stub() {
    return v1::SiteControl::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
  }

  void MakePending() {
    ASSERT_TRUE(
        queue_.Admit("task-1", Spec(), crypto::HashTaskSpec(Spec()), config_.policy(), absl::Now())
            .has_value());
  }

  TempDir temp_;
  std::string dir_;
  std::string socket_;
  v1::ClientConfig config_;
  std::unique_ptr<SiteStore> store_ = NewMemorySiteStore();
  ApprovalQueue queue_{store_.get()};
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ApprovalControlSocketTest, SocketIsMode0600InADirectory0700AndRemovedAtStop) {
  ASSERT_OK(Start());
  EXPECT_EQ(Mode(dir_), "0700");
  EXPECT_EQ(Mode(socket_), "0600");
  server_.reset();
  EXPECT_EQ(Mode(socket_), "missing");
}

TEST_F(ApprovalControlSocketTest, DirectoryOthersMayEnterIsRefused) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  EXPECT_THAT(Start(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::AllOf(HasSubstr(dir_), HasSubstr("chmod 700"))));
  EXPECT_EQ(Mode(socket_), "missing");
}

TEST_F(ApprovalControlSocketTest, PendingShowApproveAndRejectThroughTheSocket) {
  ASSERT_OK(Start());
  MakePending();
  auto stub = Stub();
  {
    grpc::ClientContext ctx;
    v1::ListPendingResponse pending;
    ASSERT_TRUE(stub->ListPending(&ctx, {}, &pending).ok());
    ASSERT_EQ(pending.pending_size(), 1);
    EXPECT_EQ(pending.pending(0).task_id(), "task-1");
  }
  {
    grpc::ClientContext ctx;
    v1::ShowTaskRequest request;
    request.set_task_id("task-1");
    v1::ShowTaskResponse shown;
    ASSERT_TRUE(stub->ShowTask(&ctx, request, &shown).ok());
    EXPECT_THAT(shown.columns(), ElementsAre("age", "disease"));
    ASSERT_EQ(shown.stages_size(), 3);
    EXPECT_EQ(shown.stages(1).stage(), "fit");
    EXPECT_EQ(shown.stages(1).values(), 3u);  // weight, then 2 parameters
    EXPECT_FALSE(shown.stages(1).dp());
    EXPECT_EQ(shown.policy(), "needs the site's approval");
  }
  {
    grpc::ClientContext ctx;
    v1::DecideRequest request;
    request.set_task_id("task-1");
    v1::DecideResponse decided;
    grpc::Status st = stub->Reject(&ctx, request, &decided);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext ctx;
  v1::DecideRequest request;
  request.set_task_id("task-1");
  v1::DecideResponse decided;
  ASSERT_TRUE(stub->Approve(&ctx, request, &decided).ok());
  // Who: the caller as the kernel names it (this test's own uid).
  passwd* me = ::getpwuid(::geteuid());
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(decided.record().decision().by(),
            std::string(me->pw_name) + " (uid " + std::to_string(::geteuid()) + ")");
  EXPECT_EQ(
      queue_.Admit("task-1", Spec(), crypto::HashTaskSpec(Spec()), config_.policy(), absl::Now()),
      std::nullopt);
}

TEST_F(ApprovalControlSocketTest, ReloadErrorReachesTheCaller) {
  ASSERT_OK(Start());
  grpc::ClientContext ctx;
  v1::ReloadPolicyResponse response;
  grpc::Status st = Stub()->ReloadPolicy(&ctx, {}, &response);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("policy.max_rounds"));
}

// A connection from uid `uid` (in a forked child that gives up root before it connects):
// what the server sent before closing, or "" if it kept the connection open for gRPC.
std::string ConnectAs(uid_t uid, const std::string& path) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(3);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const char* msg = "connect failed";
      (void)!::write(pipefd[1], msg, std::strlen(msg));
      ::_exit(0);
    }
    char buf[256];
    // The refusal is a line, then EOF; an admitted connection would wait for HTTP/2.
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) (void)!::write(pipefd[1], buf, static_cast<size_t>(n));
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child failed";
  return out;
}

TEST_F(ApprovalControlSocketTest, PeerOfAnotherUidIsRefusedByItsCredentials) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  ASSERT_OK(Start());
  MakePending();
  // With the modes as made, the file system keeps nobody out before the server is asked.
  EXPECT_EQ(ConnectAs(nobody->pw_uid, socket_), "connect failed");
  // Opened up (a mistake an administrator could make): the uid check still refuses.
  ASSERT_EQ(::chmod(temp_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(socket_.c_str(), 0666), 0);
  EXPECT_THAT(ConnectAs(nobody->pw_uid, socket_),
              HasSubstr("refused: uid " + std::to_string(nobody->pw_uid)));
  // Root is still served, and nothing was decided by the refused peer.
  grpc::ClientContext ctx;
  v1::ListPendingResponse pending;
  ASSERT_TRUE(Stub()->ListPending(&ctx, {}, &pending).ok());
  EXPECT_EQ(pending.pending_size(), 1);
}

TEST_F(ApprovalControlSocketTest, StaleSocketIsReplacedAndABusyOneRefused) {
  ASSERT_OK(Start());
  // A second server on the same path while the first listens: refused.
  ControlHandlers handlers;
  handlers.approvals = &queue_;
  EXPECT_THAT(ControlServer::Start(socket_, handlers),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in use")));
  // A socket file left by a crash (no one listens): replaced.
  server_.reset();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  ASSERT_OK(Start());
  grpc::ClientContext ctx;
  v1::ListPendingResponse pending;
  EXPECT_TRUE(Stub()->ListPending(&ctx, {}, &pending).ok());
}

// ---- Policy reload (client/config_reload.h)

constexpr char kConfig[] = R"pb(
  coordinator_address: "127.0.0.1:7443"
  tls { ca_cert: "ca.crt" cert: "site.crt" key: "site.key" }
  datasets { id: "heart" train_csv: "heart.csv" }
  data_dir: "store"
  policy { min_cohort: 3 }
)pb";

// A LiveConfig loaded from kConfig in `path`.
class PolicyReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteTestFile(path, kConfig);
    ASSERT_OK_AND_ASSIGN(v1::ClientConfig config, LoadClientConfig(path));
    live = std::make_unique<LiveConfig>(config);
  }
  TempDir temp;
  const std::string path = temp.File("site.textproto");
  std::unique_ptr<LiveConfig> live;
};

TEST_F(PolicyReloadTest, ValidFileSwapsInOnlyThePolicyAndNamesFieldsNeedingARestart) {
  testing::WriteTestFile(
      path, absl::StrReplaceAll(kConfig, {{"min_cohort: 3", "min_cohort: 4 require_approval: true"},
                                          {"7443", "7444"}}));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> needs_restart, live->Reload(path));
  EXPECT_THAT(needs_restart, ElementsAre("coordinator_address"));
  uint64_t generation = 0;
  v1::ClientConfig now = live->Get(&generation);
  EXPECT_EQ(generation, 2u);
  EXPECT_EQ(now.policy().min_cohort(), 4u);
  EXPECT_TRUE(now.policy().require_approval());
  EXPECT_EQ(now.coordinator_address(), "127.0.0.1:7443");  // the running value stays
}

TEST_F(PolicyReloadTest, RefusedFileChangesNothingAndTheErrorNamesTheField) {
  testing::WriteTestFile(
      path, absl::StrReplaceAll(kConfig, {{"min_cohort: 3", "min_threshold_fraction: 2"}}));
  EXPECT_THAT(
      live->Reload(path),
      StatusIs(absl::StatusCode::kInvalidArgument,
               ::testing::AllOf(HasSubstr(path), HasSubstr("policy.min_threshold_fraction"))));
  testing::WriteTestFile(path, "policy { no_such_field: 1 }");
  EXPECT_THAT(live->Reload(path),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no_such_field")));
  EXPECT_EQ(live->generation(), 1u);
  EXPECT_EQ(live->Get().policy().min_cohort(), 3u);
}

}  // namespace
}  // namespace tessera::client
