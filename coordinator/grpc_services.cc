#include "coordinator/grpc_services.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/worker_pool.h"
#include "coordinator/coordinator.h"
#include "coordinator/internal/call_identity.h"
#include "coordinator/internal/model_download_call.h"
#include "coordinator/internal/upload_call.h"
#include "coordinator/limits.h"
#include "coordinator/upload_gate.h"
#include "coordinator/work_wire.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "proto/federation.grpc.pb.h"
#include "proto/grpc_status.h"
#include "proto/transfer.h"

namespace tessera::coordinator {
namespace {

using internal::Caller;
using internal::InstanceOf;
using proto::ToGrpcStatus;

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

// The site calls run on gRPC's callback API, so that no call holds a thread while it
// waits: a waiting PullWork is a ticket on the work board (WorkBoard::PullAsync), and a
// call refused by a check or a per-site limit is answered at once on gRPC's own thread.
// Everything that may block or take long (the registry's store writes, the
// secure-aggregation state machines, copying a model into a response) runs on the
// service's worker pool, never on gRPC's few callback threads.
// PullWork is a raw method: its response is built from the posted item's bytes, the model
// shared by every site's item of a step, not copied into each response (work_wire.h).
using FederationBase = v1::Federation::WithCallbackMethod_Hello<
    v1::Federation::WithRawCallbackMethod_PullWork<v1::Federation::WithCallbackMethod_PushResult<
        v1::Federation::WithCallbackMethod_PushResultChunked<
            v1::Federation::WithRawCallbackMethod_PullModelChunk<
                v1::Federation::WithCallbackMethod_FetchCertificates<v1::Federation::Service>>>>>>;

// Chunked uploads read at once (UploadGate): each holds its answer once while it is
// assembled, parsed (the words move into the message: ParseUploadedAnswer) and added to the
// sum, so the coordinator holds at most this many masked inputs in flight,
// and besides those, uploads whose sizes the sites declared (internal/upload_call.h) up to
// this many bytes in all: at d = 10^5 (400 KB) ten masked inputs at a time instead of two
// (two at a time made a round at n = 50 about 10 % slower), at d = 10^6 still two.
constexpr int kUploadsAtOnce = 2;
constexpr uint64_t kDeclaredUploadBudgetBytes = uint64_t{4} << 20;

class FederationService final : public FederationBase {
 public:
  FederationService(Coordinator* coordinator, uint32_t long_poll_seconds,
                    const ServerLimits& limits)
      : coordinator_(coordinator),
        long_poll_(absl::Seconds(long_poll_seconds)),
        limiter_(limits.max_pulls_per_site, limits.max_hellos_per_minute, common::Clock::Real(),
                 limits.max_pushes_per_site),
        uploads_(kUploadsAtOnce, limits.upload_timeout, limits.min_upload_bytes_per_second,
                 common::Clock::Real(), kDeclaredUploadBudgetBytes),
        upload_context_{
            &uploads_, &workers_, limits.max_message_bytes,
            [this](const std::string& site) { return coordinator_->LargestAnswer(site); },
            [this](const std::string& site, const v1::PushResultRequest& request) {
              return Push(site, request);
            }},
        downloads_(limits.max_model_downloads, limits.upload_timeout,
                   limits.min_upload_bytes_per_second, common::Clock::Real()),
        download_context_{&downloads_,
                          [this](const std::string& site, const std::string& work_id, bool delta) {
                            return coordinator_->ModelFor(site, work_id, delta);
                          }},
        workers_(WorkerThreads(), "tessera-rpc") {}

  grpc::ServerUnaryReactor* Hello(grpc::CallbackServerContext* context,
                                  const v1::HelloRequest* request,
                                  v1::HelloResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
    if (absl::Status allowed = limiter_.AdmitHello(caller->node_id); !allowed.ok()) {
      reactor->Finish(Limited(limiter_, caller->node_id, "Hello", allowed));
      return reactor;
    }
    workers_.Schedule([this, reactor, request, response, caller = *std::move(caller)] {
      auto result =
          coordinator_->Hello(caller.node_id, caller.fingerprint_hex, *request,
                              static_cast<uint32_t>(absl::ToInt64Seconds(long_poll_)), &caller);
      if (result.ok()) {
        *response = std::move(*result);
        // internal/upload_call.h: an upload's initial metadata comes when it is admitted.
        response->set_uploads_wait_for_admission(true);
      }
      reactor->Finish(result.ok() ? grpc::Status::OK : ToGrpcStatus(result.status()));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* PullWork(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* /*request*/,
                                     grpc::ByteBuffer* response) override;

  grpc::ServerReadReactor<v1::PushResultChunk>* PushResultChunked(
      grpc::CallbackServerContext* context, v1::PushResultResponse* /*response*/) override;

  grpc::ServerUnaryReactor* PullModelChunk(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override {
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) {
      grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
      reactor->Finish(ToGrpcStatus(caller.status()));
      return reactor;
    }
    return internal::StartModelDownload(&download_context_, context, request, response,
                                        caller->node_id);
  }

  grpc::ServerUnaryReactor* FetchCertificates(grpc::CallbackServerContext* context,
                                              const v1::FetchCertificatesRequest* request,
                                              v1::FetchCertificatesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // One call in flight per site, like its answers: a reply holds up to ~0.8 MB.
    std::optional<Admitted> admitted = AdmitOneCall(context, reactor, "FetchCertificates");
    if (!admitted.has_value()) return reactor;
    workers_.Schedule([this, reactor, request, response, admitted = *admitted]() mutable {
      auto result = coordinator_->FetchCertificates(admitted.site, *request);
      admitted.slot.reset();
      const absl::Status status = result.status();
      if (result.ok()) *response = *std::move(result);
      reactor->Finish(ToGrpcStatus(status));
    });
    return reactor;
  }

  grpc::ServerUnaryReactor* PushResult(grpc::CallbackServerContext* context,
                                       const v1::PushResultRequest* request,
                                       v1::PushResultResponse* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // Refused at once: a site's daemon sends one answer at a time, and each call in
    // progress holds its message (up to max_message_bytes) until it is handled.
    std::optional<Admitted> admitted = AdmitOneCall(context, reactor, "PushResult");
    if (!admitted.has_value()) return reactor;
    workers_.Schedule([this, reactor, request, site = admitted->site,
                       slot = std::move(admitted->slot)]() mutable {
      absl::Status st = Push(site, *request);
      slot.reset();
      reactor->Finish(ToGrpcStatus(st));
    });
    return reactor;
  }

 private:
  class PullCall;

  // A call admitted by AdmitOneCall: the calling site and its one call slot.
  struct Admitted {
    std::string site;
    std::shared_ptr<CallLimiter::PullSlot> slot;
  };
  // The calling institution, holding its site's one slot for calls that carry a message
  // (CallLimiter::BeginPush); nullopt once `reactor` was finished with the refusal.
  std::optional<Admitted> AdmitOneCall(grpc::CallbackServerContext* context,
                                       grpc::ServerUnaryReactor* reactor, const char* method) {
    auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
    if (!caller.ok()) {
      reactor->Finish(ToGrpcStatus(caller.status()));
      return std::nullopt;
    }
    auto slot = std::make_shared<CallLimiter::PullSlot>(limiter_.BeginPush(caller->node_id));
    if (!slot->status().ok()) {
      reactor->Finish(Limited(limiter_, caller->node_id, method, slot->status()));
      return std::nullopt;
    }
    return Admitted{caller->node_id, std::move(slot)};
  }

  // Handles one whole answer, on a worker thread; logs a refusal.
  absl::Status Push(const std::string& site, const v1::PushResultRequest& request) {
    absl::Status st = coordinator_->PushResult(site, request);
    if (!st.ok()) {
      common::LogWarning("result_refused")
          .With("client", site)
          .With("work", request.work_id().substr(0, 128))
          .With("error", st.ToString());
    }
    return st;
  }

  // Enough threads for the CPU (the work is mostly CPU: decoding and adding masked
  // vectors) and for a store write or two in flight; a fixed number, whatever arrives.
  static int WorkerThreads() {
    return std::clamp(2 * static_cast<int>(std::thread::hardware_concurrency()), 4, 16);
  }

  Coordinator* const coordinator_;
  const absl::Duration long_poll_;
  CallLimiter limiter_;
  UploadGate uploads_;
  const internal::Uploads upload_context_;  // for the upload calls (internal/upload_call.h)
  // Model chunks sent at once (internal/model_download_call.h).
  UploadGate downloads_;
  const internal::Downloads download_context_;
  // Last member: destroyed (drained and joined) first, while the rest is still there.
  common::WorkerPool workers_;
};

// One PullWork call, from its admission to its answer. gRPC owns the reactor (deleted in
// OnDone, after Finish); what the board's callback and the worker pool need lives in the
// shared State, so that neither ever touches a deleted reactor:
//   gRPC thread:  admitted (identity checked, a per-site pull slot taken) -> Begin queued;
//   worker:       Begin: the board's ticket (or the answer at once);
//   any thread:   the wait ends (an item, the deadline, a wake, OnCancel, shutdown) ->
//                 Complete queued;
//   worker:       Complete: the caller checked again, the response, Finish.
class FederationService::PullCall final : public grpc::ServerUnaryReactor {
 public:
  PullCall(FederationService* service, grpc::CallbackServerContext* context,
           v1::PullWorkRequest request, grpc::ByteBuffer* response, crypto::CertificateInfo caller,
           CallLimiter::PullSlot slot)
      : state_(std::make_shared<State>(service, context, response, this, std::move(caller),
                                       std::move(slot))) {
    state_->request = std::move(request);
    // Answer a little before the caller's own deadline, so an item is never handed to a
    // call that has already given up.
    state_->deadline = std::min(absl::Now() + service->long_poll_,
                                absl::FromChrono(context->deadline()) - absl::Seconds(2));
    state_->instance = InstanceOf(*context);
    service->workers_.Schedule([state = state_] { Begin(state); });
  }

  void OnCancel() override {
    uint64_t ticket = 0;
    {
      absl::MutexLock lock(&state_->mu);
      state_->cancelled = true;
      ticket = state_->ticket;
    }
    if (ticket != 0) state_->service->coordinator_->CancelPull(ticket);
  }

  void OnDone() override { delete this; }

 private:
  struct State {
    State(FederationService* service, grpc::CallbackServerContext* context,
          grpc::ByteBuffer* response, grpc::ServerUnaryReactor* reactor,
          crypto::CertificateInfo caller, CallLimiter::PullSlot slot)
        : service(service),
          context(context),
          response(response),
          reactor(reactor),
          caller(std::move(caller)),
          slot(std::move(slot)) {}
    FederationService* const service;
    // Valid until the reactor's OnDone, which comes only after Finish.
    grpc::CallbackServerContext* const context;
    grpc::ByteBuffer* const response;  // a serialized v1::PullWorkResponse
    grpc::ServerUnaryReactor* const reactor;
    const crypto::CertificateInfo caller;
    std::optional<CallLimiter::PullSlot> slot;  // released just before Finish
    v1::PullWorkRequest request;                // the models the site holds
    std::string instance;
    absl::Time deadline;
    absl::Mutex mu;
    uint64_t ticket ABSL_GUARDED_BY(mu) = 0;
    bool cancelled ABSL_GUARDED_BY(mu) = false;
  };

  static void Begin(const std::shared_ptr<State>& state) {
    Coordinator* coordinator = state->service->coordinator_;
    const std::string& site = state->caller.node_id;
    bool gone = false;
    {
      absl::MutexLock lock(&state->mu);
      gone = state->cancelled;
    }
    if (gone) return Finish(state, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
    coordinator->PullStarted(site, state->instance);
    auto ticket = coordinator->StartPull(
        site, state->deadline, [state](std::shared_ptr<const PostedItem> item) {
          state->service->workers_.Schedule(
              [state, item = std::move(item)] { Complete(state, item); });
        });
    if (!ticket.ok()) {
      coordinator->PullEnded(site, state->instance, state->context->IsCancelled());
      return Finish(state, ToGrpcStatus(ticket.status()));
    }
    bool cancelled = false;
    {
      absl::MutexLock lock(&state->mu);
      state->ticket = *ticket;
      cancelled = state->cancelled;
    }
    // Cancelled between the check above and the ticket: end the wait now.
    if (cancelled && *ticket != 0) coordinator->CancelPull(*ticket);
  }

  static void Complete(const std::shared_ptr<State>& state,
                       const std::shared_ptr<const PostedItem>& item) {
    Coordinator* coordinator = state->service->coordinator_;
    grpc::CallbackServerContext* context = state->context;
    const std::string& site = state->caller.node_id;
    coordinator->PullEnded(site, state->instance, context->IsCancelled());
    coordinator->Seen(site);
    // The wait may have outlived the certificate, or the site was revoked or disabled
    // meanwhile (which wakes the wait): check again before anything is handed out.
    if (auto still = Caller(coordinator, context, crypto::Role::kInstitution); !still.ok()) {
      if (item != nullptr) coordinator->ReturnUndelivered(site);
      if (absl::IsUnauthenticated(still.status()) || absl::IsPermissionDenied(still.status())) {
        coordinator->DropClient(site, std::string(still.status().message()));
      }
      return Finish(state, ToGrpcStatus(still.status()));
    }
    if (item == nullptr) {
      // No work yet: an empty PullWorkResponse (zero bytes; a raw response must be set).
      *state->response = EmptyPullWorkResponse();
      return Finish(state, grpc::Status::OK);
    }
    if (context->IsCancelled()) {
      coordinator->ReturnUndelivered(site);
      return Finish(state, grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
    }
    *state->response = PullWorkResponseBytes(*item, *coordinator->crl_pem(), state->request);
    Finish(state, grpc::Status::OK);
  }

  // The call's one answer. The reactor may be deleted as soon as Finish is called.
  static void Finish(const std::shared_ptr<State>& state, const grpc::Status& status) {
    state->slot.reset();
    state->reactor->Finish(status);
  }

  std::shared_ptr<State> state_;
};

grpc::ServerReadReactor<v1::PushResultChunk>* FederationService::PushResultChunked(
    grpc::CallbackServerContext* context, v1::PushResultResponse* /*response*/) {
  // Refused at once, like PushResult, by the caller's identity and its pushes in progress.
  absl::Status refused;
  auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
  const absl::StatusOr<uint64_t> declared =
      internal::DeclaredUploadBytes(context->client_metadata());
  std::optional<CallLimiter::PullSlot> slot;
  if (!caller.ok()) {
    refused = caller.status();
  } else if (!declared.ok()) {
    refused = declared.status();
  } else {
    slot.emplace(limiter_.BeginPush(caller->node_id));
    if (!slot->status().ok()) {
      Limited(limiter_, caller->node_id, "PushResultChunked", slot->status());
      refused = slot->status();
    }
  }
  if (!refused.ok()) {
    class Refused final : public grpc::ServerReadReactor<v1::PushResultChunk> {
     public:
      explicit Refused(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
      void OnDone() override { delete this; }
    };
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): gRPC reactors delete themselves.
    return new Refused(refused);
  }
  return internal::StartUpload(&upload_context_, caller->node_id, *std::move(slot), *declared);
}

grpc::ServerUnaryReactor* FederationService::PullWork(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) {
  auto caller = Caller(coordinator_, context, crypto::Role::kInstitution);
  v1::PullWorkRequest parsed;
  absl::Status refused = caller.status();
  if (refused.ok()) refused = ParseRequest(request, "PullWork", &parsed);
  if (!refused.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(refused));
    return reactor;
  }
  // Only the first few held models count (work_wire.h); the rest is not kept.
  while (parsed.held_model_hashes_size() > static_cast<int>(proto::kMaxHeldModels)) {
    parsed.mutable_held_model_hashes()->RemoveLast();
  }
  // Refused at once on this thread: a site's daemon holds one pull.
  CallLimiter::PullSlot slot = limiter_.BeginPull(caller->node_id);
  if (!slot.status().ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(Limited(limiter_, caller->node_id, "PullWork", slot.status()));
    return reactor;
  }
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): gRPC reactors delete themselves (OnDone).
  return new PullCall(this, context, std::move(parsed), response, *std::move(caller),
                      std::move(slot));
}

}  // namespace

std::unique_ptr<grpc::Service> MakeFederationService(Coordinator* coordinator,
                                                     uint32_t long_poll_seconds,
                                                     const ServerLimits& limits) {
  return std::make_unique<FederationService>(coordinator, long_poll_seconds, limits);
}

bool IsRawMethod(std::string_view method) {
  return method == "/tessera.v1.Federation/PullWork" ||
         method == "/tessera.v1.Federation/PullModelChunk";
}

}  // namespace tessera::coordinator
