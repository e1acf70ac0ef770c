#include "dashboard/grpc_admin_source.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_status.h"

namespace tessera::dashboard {
namespace {

// A page waits on these calls: short, so an unreachable coordinator shows quickly.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);

class GrpcSource : public AdminSource {
 public:
  explicit GrpcSource(std::unique_ptr<v1::Admin::StubInterface> stub) : stub_(std::move(stub)) {}

  absl::StatusOr<v1::ListTasksResponse> ListTasks() override {
    return Call<v1::ListTasksResponse>(&v1::Admin::StubInterface::ListTasks,
                                       v1::ListTasksRequest());
  }
  absl::StatusOr<v1::GetTaskResponse> GetTask(const std::string& task_id) override {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    return Call<v1::GetTaskResponse>(&v1::Admin::StubInterface::GetTask, request);
  }
  absl::StatusOr<v1::ListClientsResponse> ListClients() override {
    return Call<v1::ListClientsResponse>(&v1::Admin::StubInterface::ListClients,
                                         v1::ListClientsRequest());
  }

 private:
  // One unary call with kCallTimeout.
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(grpc::Status (v1::Admin::StubInterface::*rpc)(grpc::ClientContext*,
                                                                              const Request&,
                                                                              Response*),
                                const Request& request) {
    Response response;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
    absl::Status st = Convert((stub_.get()->*rpc)(&ctx, request, &response));
    if (!st.ok()) return st;
    return response;
  }
  static absl::Status Convert(const grpc::Status& st) {
    absl::Status s = proto::FromGrpcStatus(st);
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::UnavailableError(absl::StrCat("coordinator unreachable: ", s.message()));
    }
    return s;
  }

  std::unique_ptr<v1::Admin::StubInterface> stub_;
};

}  // namespace

std::unique_ptr<AdminSource> GrpcAdminSource(std::unique_ptr<v1::Admin::StubInterface> stub) {
  return std::make_unique<GrpcSource>(std::move(stub));
}

}  // namespace tessera::dashboard
