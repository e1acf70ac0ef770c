// Who a site is, end to end (issue 10, docs/pki.md), with real daemons and real gRPC:
//
//   DuplicateIdentityIsRefusedAndNamed: a second tessera-client process with hospital-a's
//     certificate is refused while the first is live, with a message naming the identity,
//     where and since when the first is connected; the first keeps training; once the first
//     stops, the second takes over by itself.
//   DisabledSiteIsRefusedUntilEnabledAcrossARestart: `tessera clients disable` refuses a
//     site at every call (its daemon is told the operator's decision), shows it DISABLED,
//     survives a coordinator restart; an institution cannot call it; `enable` takes it back.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using testing::Eventually;
using ::testing::HasSubstr;

bool LogHas(Process* p, const std::string& text) {
  return p != nullptr && p->Log().find(text) != std::string::npos;
}

class E2eIdentityTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    edit_coordinator_config_ = [](v1::CoordinatorConfig* config) {
      config->set_long_poll_seconds(3);  // a bound daemon is live for 2 x 3 s after a call
    };
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClients());
  }

  absl::StatusOr<v1::ClientRecord> Record(const std::string& id) {
    ASSIGN_OR_RETURN(std::vector<v1::ClientRecord> all, ListClients());
    for (const v1::ClientRecord& c : all) {
      if (c.client_id() == id) return c;
    }
    return absl::NotFoundError(id);
  }
};

TEST_F(E2eIdentityTest, DuplicateIdentityIsRefusedAndNamed) {
  // A second daemon on another machine's files, with the same certificate and key.
  Site& twin = site("twin");
  twin.dir = temp().File("twin");
  ASSERT_OK(common::MakeDirectories(twin.dir, 0700));
  twin.tls = site("hospital-a").tls;
  twin.train_csv = site("hospital-a").train_csv;
  twin.test_csv = site("hospital-a").test_csv;
  ASSERT_OK(StartClient("twin"));
  ASSERT_TRUE(Eventually([&] { return LogHas(twin.process.get(), "event=duplicate_identity"); },
                         absl::Seconds(30)))
      << twin.process->LogTail();
  const std::string log = twin.process->Log();
  EXPECT_THAT(log, HasSubstr("identity hospital-a is already connected"));
  EXPECT_THAT(log, HasSubstr("from ipv4:127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr(" since "));
  EXPECT_THAT(log, HasSubstr("stop the other one"));
  EXPECT_FALSE(LogHas(twin.process.get(), "event=connected"));

  // The first daemon is undisturbed: a task runs to the end with the three sites.
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(2);
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  EXPECT_EQ(done.state(), v1::TASK_COMPLETED) << done.ShortDebugString();
  EXPECT_FALSE(LogHas(twin.process.get(), "event=connected"));

  // The first stops: the second takes the identity over by itself.
  ASSERT_OK(StopClient("hospital-a"));
  ASSERT_TRUE(
      Eventually([&] { return LogHas(twin.process.get(), "event=connected"); }, absl::Seconds(30)))
      << twin.process->LogTail();
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=client_instance_replaced client=hospital-a"));
  ASSERT_OK(StopClient("twin"));
}

TEST_F(E2eIdentityTest, DisabledSiteIsRefusedUntilEnabledAcrossARestart) {
  // An institution's certificate cannot disable anyone.
  {
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                         ChannelAs(site("hospital-a").tls, crypto::Role::kInstitution));
    std::unique_ptr<v1::Admin::Stub> admin = v1::Admin::NewStub(channel);
    v1::DisableClientRequest request;
    request.set_client_id("hospital-b");
    v1::DisableClientResponse response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Status st = admin->DisableClient(&ctx, request, &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  }
  ASSERT_OK_AND_ASSIGN(CommandResult unknown, Console({"clients", "disable", "nobody"}));
  EXPECT_NE(unknown.exit_code(), 0);
  EXPECT_THAT(unknown.err, HasSubstr("no client 'nobody'"));

  ASSERT_OK_AND_ASSIGN(CommandResult off,
                       Console({"clients", "disable", "hospital-c"}, {"--reason", "data audit"}));
  ASSERT_EQ(off.exit_code(), 0) << off.err;
  Process* c = site("hospital-c").process.get();
  // Its waiting long-poll is woken and refused, with the operator's decision.
  ASSERT_TRUE(Eventually([&] { return LogHas(c, "is disabled by the federation operator"); },
                         absl::Seconds(20)))
      << c->LogTail();
  EXPECT_THAT(c->Log(), HasSubstr("data audit"));
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=client_disabled client=hospital-c"));
  ASSERT_OK_AND_ASSIGN(CommandResult list, Console({"clients", "list"}));
  EXPECT_THAT(list.out, HasSubstr("DISABLED"));
  EXPECT_THAT(list.out, HasSubstr("hospital-c disabled by operator: data audit"));

  // Kept across a restart of the coordinator (on its port: the sites keep its address).
  const int port = this->port();
  ASSERT_OK(StopCoordinator());
  ASSERT_OK(StartCoordinator(absl::StrCat("127.0.0.1:", port)));
  ASSERT_OK_AND_ASSIGN(v1::ClientRecord record, Record("hospital-c"));
  EXPECT_TRUE(record.disabled());
  EXPECT_EQ(record.disabled_reason(), "data audit");

  // Enabled, it is back: a call of its own after the enable (not one refused before it).
  const absl::Time enabled_at = absl::Now();
  ASSERT_OK_AND_ASSIGN(CommandResult on, Console({"clients", "enable", "hospital-c"}));
  ASSERT_EQ(on.exit_code(), 0) << on.err;
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<v1::ClientRecord> r = Record("hospital-c");
        return r.ok() && !r->disabled() && r->status() == v1::CLIENT_ACTIVE &&
               absl::FromUnixMillis(r->last_seen_unix_ms()) > enabled_at;
      },
      absl::Seconds(30)))
      << c->LogTail();
  ASSERT_OK_AND_ASSIGN(CommandResult after, Console({"clients", "list"}));
  EXPECT_THAT(after.out, ::testing::Not(HasSubstr("DISABLED")));
  EXPECT_THAT(after.out, HasSubstr("CERT EXPIRES"));
}

}  // namespace
}  // namespace tessera::e2e
