#include "coordinator/grpc_services.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/limits.h"
#include "crypto/hash.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "proto/admin.grpc.pb.h"
#include "proto/federation.grpc.pb.h"
#include "proto/grpc_status.h"

namespace tessera::coordinator {
namespace {

using proto::ToGrpcStatus;

// The metadata key of a site daemon's instance id (access_control.h).
constexpr char kInstanceKey[] = "tessera-instance";

std::string InstanceOf(const grpc::ServerContext& context) {
  auto it = context.client_metadata().find(kInstanceKey);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), std::min<size_t>(it->second.size(), 64));
}

// The caller's verified identity, if it has `role` and is admitted now: every call checks
// expiry, revocation, an operator's disable and the instance binding (Coordinator::Admit),
// so a live connection gets nothing once its certificate expires or is revoked.
absl::StatusOr<crypto::CertificateInfo> Caller(Coordinator* coordinator,
                                               grpc::ServerContext* context, crypto::Role role) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("no TLS peer");
  auto identity = crypto::PeerIdentity(*auth);
  if (!identity.ok()) return identity.status();
  absl::Status allowed = crypto::RequireRole(*identity, role);
  if (!allowed.ok()) {
    common::LogWarning("call_refused")
        .With("peer", identity->node_id)
        .With("role", crypto::RoleName(identity->role))
        .With("needed", crypto::RoleName(role));
    return allowed;
  }
  absl::Status admitted = coordinator->Admit(*identity, InstanceOf(*context), context->peer());
  if (!admitted.ok()) {
    common::LogWarning("call_refused")
        .With("peer", identity->node_id)
        .With("serial", identity->serial_hex)
        .With("error", std::string(admitted.message()));
    return admitted;
  }
  return identity;
}

// A call refused by a per-site limit (coordinator/limits.h), logged at most every 10 s per
// site and method.
grpc::Status Limited(CallLimiter& limiter, const std::string& site, const char* method,
                     const absl::Status& refusal) {
  if (const int suppressed = limiter.TakeLogTurn(site, method); suppressed >= 0) {
    common::LogWarning("call_limited")
        .With("peer", site)
        .With("method", method)
        .With("error", std::string(refusal.message()))
        .With("not_logged_since_last", static_cast<uint64_t>(suppressed));
  }
  return ToGrpcStatus(refusal);
}

class FederationService final : public v1::Federation::Service {
 public:
  FederationService(Coordinator* coordinator, uint32_t long_poll_seconds,
                    const ServerLimits& limits)
      : coordinator_(coordinator),
        long_poll_(absl::Seconds(long_poll_seconds)),
        limiter_(limits.max_pulls_per_site, limits.max_hellos_per_minute, common::Clock::Real()) {}

  grpc::Status Hello(grpc::ServerContext* context, const v1::HelloRequest* request,
                     v1::HelloResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (absl::Status allowed = limiter_.AdmitHello(caller->node_id); !allowed.ok()) {
      return Limited(limiter_, caller->node_id, "Hello", allowed);
    }
    auto result =
        coordinator_->Hello(caller->node_id, caller->fingerprint_hex, *request,
                            static_cast<uint32_t>(absl::ToInt64Seconds(long_poll_)), &*caller);
    if (!result.ok()) return ToGrpcStatus(result.status());
    *response = std::move(*result);
    return grpc::Status::OK;
  }

  grpc::Status PullWork(grpc::ServerContext* context, const v1::PullWorkRequest* request,
                        v1::PullWorkResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    // Refused at once, not parked on a gRPC thread: a site's daemon holds one pull.
    const CallLimiter::PullSlot slot = limiter_.BeginPull(caller->node_id);
    if (!slot.status().ok()) return Limited(limiter_, caller->node_id, "PullWork", slot.status());
    // Answer a little before the caller's own deadline, so an item is never handed to a
    // call that has already given up.
    absl::Time deadline = absl::Now() + long_poll_;
    absl::Time call_deadline = absl::FromChrono(context->deadline());
    deadline = std::min(deadline, call_deadline - absl::Seconds(2));
    const std::string instance = InstanceOf(*context);
    coordinator_->PullStarted(caller->node_id, instance);
    auto item = coordinator_->PullWork(caller->node_id, deadline);
    coordinator_->PullEnded(caller->node_id, instance, context->IsCancelled());
    if (!item.ok()) return ToGrpcStatus(item.status());
    // The wait may have outlived the certificate, or the site was revoked or disabled
    // meanwhile (which wakes the wait): check again before anything is handed out.
    if (auto still = Caller(coordinator_, context, crypto::Role::kInstitution); !still.ok()) {
      if (*item != nullptr) coordinator_->ReturnUndelivered(caller->node_id);
      if (absl::IsUnauthenticated(still.status()) || absl::IsPermissionDenied(still.status())) {
        coordinator_->DropClient(caller->node_id, std::string(still.status().message()));
      }
      return ToGrpcStatus(still.status());
    }
    if (*item == nullptr) return grpc::Status::OK;
    if (context->IsCancelled()) {
      coordinator_->ReturnUndelivered(caller->node_id);
      return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    }
    *response->mutable_work() = **item;
    response->mutable_work()->set_crl_pem(coordinator_->crl_pem());
    return grpc::Status::OK;
  }

  grpc::Status PushResult(grpc::ServerContext* context, const v1::PushResultRequest* request,
                          v1::PushResultResponse* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    absl::Status st = coordinator_->PushResult(caller->node_id, *request);
    if (!st.ok()) {
      common::LogWarning("result_refused")
          .With("client", caller->node_id)
          .With("work", request->work_id().substr(0, 128))
          .With("error", st.ToString());
    }
    return ToGrpcStatus(st);
  }

 private:
  Coordinator* const coordinator_;
  const absl::Duration long_poll_;
  CallLimiter limiter_;
};

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

std::unique_ptr<grpc::Service> MakeFederationService(Coordinator* coordinator,
                                                     uint32_t long_poll_seconds,
                                                     const ServerLimits& limits) {
  return std::make_unique<FederationService>(coordinator, long_poll_seconds, limits);
}

std::unique_ptr<grpc::Service> MakeAdminService(Coordinator* coordinator) {
  return std::make_unique<AdminService>(coordinator);
}

}  // namespace tessera::coordinator
