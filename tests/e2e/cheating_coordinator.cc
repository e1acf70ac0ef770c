#include "tests/e2e/cheating_coordinator.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/status.h"
#include "coordinator/work_wire.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "proto/federation.grpc.pb.h"
#include "proto/grpc_status.h"

namespace tessera::e2e {
namespace {

using proto::ToGrpcStatus;

// The caller's verified identity; institutions only.
absl::StatusOr<crypto::CertificateInfo> Institution(grpc::ServerContext* context) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth == nullptr) return absl::UnauthenticatedError("no TLS peer");
  ASSIGN_OR_RETURN(crypto::CertificateInfo identity, crypto::PeerIdentity(*auth));
  RETURN_IF_ERROR(crypto::RequireRole(identity, crypto::Role::kInstitution));
  return identity;
}

// The Federation service over a board and a registry (see the header for what it mirrors).
class BoardFederationService final : public v1::Federation::Service {
 public:
  BoardFederationService(coordinator::WorkBoard* board, coordinator::ClientRegistry* registry,
                         coordinator::SecureStageRunner* runner, uint32_t long_poll_seconds)
      : board_(board),
        registry_(registry),
        runner_(runner),
        long_poll_seconds_(long_poll_seconds) {}

  grpc::Status Hello(grpc::ServerContext* context, const v1::HelloRequest* request,
                     v1::HelloResponse* response) override {
    auto caller = Institution(context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    std::vector<std::string> datasets(request->dataset_ids().begin(), request->dataset_ids().end());
    absl::Status known = registry_->Hello(caller->node_id, caller->fingerprint_hex, datasets,
                                          request->client_version());
    if (!known.ok()) return ToGrpcStatus(known);
    // A client saying Hello again (a restarted daemon) may have lost what it was handed.
    board_->Redeliver(caller->node_id);
    response->set_client_id(caller->node_id);
    response->set_long_poll_seconds(long_poll_seconds_);
    return grpc::Status::OK;
  }

  grpc::Status PullWork(grpc::ServerContext* context, const v1::PullWorkRequest* request,
                        v1::PullWorkResponse* response) override {
    auto caller = Institution(context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (!registry_->Known(caller->node_id)) {
      return ToGrpcStatus(absl::FailedPreconditionError("call Hello first"));
    }
    registry_->Seen(caller->node_id);
    const absl::Time deadline = std::min(absl::Now() + absl::Seconds(long_poll_seconds_),
                                         absl::FromChrono(context->deadline()) - absl::Seconds(2));
    std::shared_ptr<const coordinator::PostedItem> item = board_->Pull(caller->node_id, deadline);
    if (item == nullptr) return grpc::Status::OK;
    if (context->IsCancelled()) {
      // The daemon that asked is gone (stopped, restarted): the item waits for the next one.
      board_->Redeliver(caller->node_id);
      return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    }
    if (coordinator::TakesDelta(*item, *request)) {
      // The model as the delta the session was given (inline), as the real service sends it.
      v1::WorkItem work = item->own;
      if (!work.MergeFromString(item->own_tail.Joined()) ||
          !work.MergeFromString(*item->delta->shared)) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "delta variant does not parse");
      }
      *response->mutable_work() = std::move(work);
      return grpc::Status::OK;
    }
    *response->mutable_work() = item->Whole();
    return grpc::Status::OK;
  }

  grpc::Status PushResult(grpc::ServerContext* context, const v1::PushResultRequest* request,
                          v1::PushResultResponse* response) override {
    auto caller = Institution(context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    if (!registry_->Known(caller->node_id)) {
      return ToGrpcStatus(absl::FailedPreconditionError("call Hello first"));
    }
    registry_->Seen(caller->node_id);
    return ToGrpcStatus(board_->Push(caller->node_id, *request));
  }

  // As Coordinator::FetchCertificates, from the session this coordinator runs.
  grpc::Status FetchCertificates(grpc::ServerContext* context,
                                 const v1::FetchCertificatesRequest* request,
                                 v1::FetchCertificatesResponse* response) override {
    auto caller = Institution(context);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    const std::vector<std::string> digests(request->certificate_sha256().begin(),
                                           request->certificate_sha256().end());
    auto pems = runner_->ListedCertificates(request->secagg_session(), caller->node_id, digests);
    if (!pems.ok()) return ToGrpcStatus(pems.status());
    for (std::string& pem : *pems) response->add_certificates(std::move(pem));
    return grpc::Status::OK;
  }

 private:
  coordinator::WorkBoard* const board_;
  coordinator::ClientRegistry* const registry_;
  coordinator::SecureStageRunner* const runner_;
  const uint32_t long_poll_seconds_;
};

}  // namespace

CheatingCoordinator::CheatingCoordinator(std::string ca_cert_pem,
                                         std::unique_ptr<coordinator::Store> store,
                                         uint32_t long_poll_seconds)
    : ca_cert_pem_(std::move(ca_cert_pem)),
      store_(std::move(store)),
      registry_(store_.get(), common::Clock::Real(), absl::Seconds(90),
                [this](const std::string& id) { return board_.WaitingPulls(id); }),
      runner_(&board_, common::Clock::Real(), ca_cert_pem_),
      service_(std::make_unique<BoardFederationService>(&board_, &registry_, &runner_,
                                                        long_poll_seconds)) {}

absl::StatusOr<std::unique_ptr<CheatingCoordinator>> CheatingCoordinator::Start(
    const v1::TlsFiles& tls, uint32_t long_poll_seconds) {
  RETURN_IF_ERROR(crypto::RequireTls13ForProcess());
  ASSIGN_OR_RETURN(crypto::TlsMaterial material,
                   crypto::LoadTlsMaterial(tls, crypto::Role::kCoordinator, absl::Now()));
  std::unique_ptr<CheatingCoordinator> c(new CheatingCoordinator(
      material.ca_cert_pem, coordinator::NewMemoryStore(), long_poll_seconds));
  RETURN_IF_ERROR(c->registry_.Load());

  // As coordinator/server.cc builds the daemon's server.
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", crypto::MakeServerCredentials(material), &port);
  builder.RegisterService(c->service_.get());
  builder.SetMaxReceiveMessageSize(crypto::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(crypto::kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  c->server_ = builder.BuildAndStart();
  if (c->server_ == nullptr || port == 0) {
    return absl::UnavailableError("the cheating coordinator cannot listen on 127.0.0.1:0");
  }
  c->address_ = absl::StrCat("127.0.0.1:", port);
  return c;
}

CheatingCoordinator::~CheatingCoordinator() { Shutdown(); }

coordinator::SecureStageResult CheatingCoordinator::RunSession(
    const coordinator::SecureStageRequest& request) {
  return runner_.Run(request);
}

void CheatingCoordinator::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  runner_.Cancel();
  board_.Shutdown();  // waiting pulls return at once
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }
}

}  // namespace tessera::e2e
