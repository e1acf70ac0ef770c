// End-to-end: roles carried by certificates decide who may call what. An institution's
// certificate cannot use the admin service; an operator's cannot use the federation service.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "proto/federation.grpc.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
}

class E2eAccessTest : public FederationTest {
 protected:
  void SetUp() override {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(StartCoordinator());
  }
};

// (c) Admin RPCs with an institution's certificate: PERMISSION_DENIED, nothing stored.
TEST_F(E2eAccessTest, InstitutionCertificateCannotCallAdminRpcs) {
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       ChannelAs(site("hospital-a").tls, crypto::Role::kInstitution));
  std::unique_ptr<v1::Admin::Stub> admin = v1::Admin::NewStub(channel);

  {
    v1::ListTasksResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status st = admin->ListTasks(&ctx, v1::ListTasksRequest(), &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  }
  {
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
    v1::SubmitTaskRequest request;
    *request.mutable_spec() = spec;
    v1::SubmitTaskResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status st = admin->SubmitTask(&ctx, request, &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
    EXPECT_THAT(response.task_id(), IsEmpty());
  }
  {
    v1::ListClientsResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status st = admin->ListClients(&ctx, v1::ListClientsRequest(), &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  }

  EXPECT_THAT(coordinator()->Log(),
              HasSubstr("event=call_refused peer=hospital-a role=institution needed=operator"));
  // Close our connection before the coordinator stops (see FederationTest::TearDown).
  admin.reset();
  channel.reset();

  // The operator sees no task, now and in the store once the coordinator stopped.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> tasks, ListTasks());
  EXPECT_THAT(tasks, IsEmpty());
  ASSERT_OK(StopCoordinator());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> store, OpenStore());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::TaskRecord> stored, store->ListTasks());
  EXPECT_THAT(stored, IsEmpty());
}

// (c) The federation service with an operator's certificate: PERMISSION_DENIED, and the
// operator does not become a client.
TEST_F(E2eAccessTest, OperatorCertificateCannotCallFederationRpcs) {
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       ChannelAs(operator_tls(), crypto::Role::kOperator));
  std::unique_ptr<v1::Federation::Stub> federation = v1::Federation::NewStub(channel);
  {
    v1::HelloRequest request;
    request.set_client_version("e2e");
    request.add_dataset_ids("breast_cancer");
    v1::HelloResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status st = federation->Hello(&ctx, request, &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  }
  {
    v1::PullWorkResponse response;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status st = federation->PullWork(&ctx, v1::PullWorkRequest(), &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  }
  EXPECT_THAT(coordinator()->Log(),
              HasSubstr("event=call_refused peer=operator role=operator needed=institution"));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ClientRecord> clients, ListClients());
  EXPECT_THAT(clients, IsEmpty());
}

}  // namespace
}  // namespace tessera::e2e
