// The coordinator's Admin service (grpc_services.h): operator certificates only; a
// synchronous service on gRPC's thread pool.
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "coordinator/internal/call_identity.h"
#include "crypto/hash.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/grpc_status.h"

namespace tessera::coordinator {
namespace {

using internal::Caller;
using proto::ToGrpcStatus;

class AdminService final : public v1::Admin::Service {
 public:
  explicit AdminService(Coordinator* coordinator) : coordinator_(coordinator) {}

  grpc::Status SubmitTask(grpc::ServerContext* context, const v1::SubmitTaskRequest* request,
                          v1::SubmitTaskResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto result = coordinator_->SubmitTask(caller->node_id, request->spec());
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = std::move(*result);
    return grpc::Status::OK;
  }

  grpc::Status ListTasks(grpc::ServerContext* context, const v1::ListTasksRequest* request,
                         v1::ListTasksResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto tasks = coordinator_->ListTasks();
    if (!tasks.ok()) return ToGrpcStatus(tasks.status());
    for (v1::TaskRecord& t : *tasks) *response->add_tasks() = std::move(t);
    return grpc::Status::OK;
  }

  grpc::Status GetTask(grpc::ServerContext* context, const v1::GetTaskRequest* request,
                       v1::GetTaskResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto task = coordinator_->GetTask(request->task_id());
    if (!task.ok()) return ToGrpcStatus(task.status());
    *response = std::move(*task);
    return grpc::Status::OK;
  }

  grpc::Status GetRound(grpc::ServerContext* context, const v1::GetRoundRequest* request,
                        v1::GetRoundResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto round = coordinator_->GetRound(request->task_id(), request->round());
    if (!round.ok()) return ToGrpcStatus(round.status());
    *response->mutable_round() = std::move(*round);
    return grpc::Status::OK;
  }

  grpc::Status CancelTask(grpc::ServerContext* context, const v1::CancelTaskRequest* request,
                          v1::CancelTaskResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    return ToGrpcStatus(
        coordinator_->CancelTask(caller->node_id, request->task_id(), request->reason()));
  }

  grpc::Status ListClients(grpc::ServerContext* context, const v1::ListClientsRequest* request,
                           v1::ListClientsResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    for (v1::ClientRecord& c : coordinator_->ListClients()) *response->add_clients() = std::move(c);
    response->set_now_unix_ms(absl::ToUnixMillis(absl::Now()));
    response->set_stale_after_ms(absl::ToInt64Milliseconds(coordinator_->client_stale_after()));
    response->set_offline_after_ms(absl::ToInt64Milliseconds(coordinator_->client_offline_after()));
    return grpc::Status::OK;
  }

  grpc::Status ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                           v1::ExportModelResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto exported = coordinator_->ExportModel(*request);
    if (!exported.ok()) return ToGrpcStatus(exported.status());
    // Which operator took which model out: hashes only, never the parameters.
    common::LogInfo("model_exported")
        .With("operator", caller->node_id)
        .With("task", request->task_id().substr(0, 128))
        .With("round", exported->round())
        .With("format", exported->provenance().body().export_format())
        .With("file_sha256", crypto::ToHex(exported->provenance().body().export_sha256()))
        .With("model_sha256", crypto::ToHex(exported->provenance().body().model_hash()));
    *response = std::move(*exported);
    return grpc::Status::OK;
  }

  grpc::Status BackupStore(grpc::ServerContext* context, const v1::BackupStoreRequest* /*request*/,
                           grpc::ServerWriter<v1::BackupStoreChunk>* writer) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    const absl::Time started = absl::Now();
    uint64_t bytes = 0;
    v1::StoreBackupManifest manifest;
    absl::Status st = coordinator_->BackupStore([&](const v1::BackupStoreChunk& chunk) {
      if (context->IsCancelled()) return false;
      bytes += chunk.data().size();
      if (chunk.has_manifest()) manifest = chunk.manifest();
      return writer->Write(chunk);
    });
    if (!st.ok()) {
      common::LogWarning("store_backup_failed")
          .With("operator", caller->node_id)
          .With("error", std::string(st.message()));
      return ToGrpcStatus(st);
    }
    common::LogInfo("store_backup_sent")
        .With("operator", caller->node_id)
        .With("files", manifest.files_size())
        .With("bytes", bytes)
        .With("tasks", manifest.tasks())
        .With("ms", absl::ToInt64Milliseconds(absl::Now() - started));
    return grpc::Status::OK;
  }

  grpc::Status DisableClient(grpc::ServerContext* context, const v1::DisableClientRequest* request,
                             v1::DisableClientResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto record = coordinator_->SetClientDisabled(caller->node_id, request->client_id(), true,
                                                  request->reason());
    if (!record.ok()) return ToGrpcStatus(record.status());
    *response->mutable_client() = std::move(*record);
    return grpc::Status::OK;
  }

  grpc::Status EnableClient(grpc::ServerContext* context, const v1::EnableClientRequest* request,
                            v1::EnableClientResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto record = coordinator_->SetClientDisabled(caller->node_id, request->client_id(), false, "");
    if (!record.ok()) return ToGrpcStatus(record.status());
    *response->mutable_client() = std::move(*record);
    return grpc::Status::OK;
  }

  grpc::Status ReleaseClient(grpc::ServerContext* context, const v1::ReleaseClientRequest* request,
                             v1::ReleaseClientResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kOperator);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    auto record = coordinator_->ReleaseClient(caller->node_id, request->client_id());
    if (!record.ok()) return ToGrpcStatus(record.status());
    *response->mutable_client() = std::move(*record);
    return grpc::Status::OK;
  }

 private:
  Coordinator* const coordinator_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAdminService(Coordinator* coordinator) {
  return std::make_unique<AdminService>(coordinator);
}

}  // namespace tessera::coordinator
