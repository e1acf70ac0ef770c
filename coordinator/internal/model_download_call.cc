#include "coordinator/internal/model_download_call.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/work_wire.h"
#include "proto/federation.pb.h"
#include "proto/grpc_status.h"
#include "proto/transfer.h"

namespace tessera::coordinator::internal {
namespace {

// What the gate's callbacks share with the reactor; they may outlive it (the gate's watcher
// may report an overstay just as the call ends).
struct CallState {
  absl::Mutex mu;
  bool admitted ABSL_GUARDED_BY(mu) = false;
  bool released ABSL_GUARDED_BY(mu) = false;  // its place given back (overstayed or done)
  uint64_t ticket ABSL_GUARDED_BY(mu) = 0;
};

// Gives the call's place back once (from the overstay report or from OnDone).
void ReleaseOnce(UploadGate* gate, CallState* state) {
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&state->mu);
    if (!state->admitted || state->released) return;
    state->released = true;
    ticket = state->ticket;
  }
  gate->Release(ticket);
}

class ModelChunkCall final : public grpc::ServerUnaryReactor {
 public:
  ModelChunkCall(UploadGate* gate, grpc::ByteBuffer* response, std::string site,
                 std::shared_ptr<const std::string> model, uint64_t offset)
      : gate_(gate),
        response_(response),
        site_(std::move(site)),
        model_(std::move(model)),
        offset_(offset),
        state_(std::make_shared<CallState>()) {}

  // Asks for a place; the chunk goes once one is free.
  void Start() {
    const uint64_t bytes = std::min<uint64_t>(proto::kModelChunkBytes, model_->size() - offset_);
    std::shared_ptr<CallState> state = state_;
    const uint64_t ticket = gate_->Acquire(
        site_,
        // Runs once, before Finish: the reactor is alive.
        [this, state, bytes](uint64_t admitted) {
          {
            absl::MutexLock lock(&state->mu);
            state->admitted = true;
            state->ticket = admitted;
          }
          gate_->Received(admitted, bytes);  // its allowance covers the chunk's bytes
          *response_ = ModelChunkResponseBytes(model_, offset_);
          Finish(grpc::Status::OK);
        },
        // Too slow a reader: its chunk still goes, but its place goes to the next request
        // (no cancel from here: gRPC may run the call's reactions inline in a cancel).
        [gate = gate_, state, site = site_](absl::Duration held, uint64_t bytes) {
          common::LogWarning("model_download_too_slow")
              .With("client", site)
              .With("bytes", bytes)
              .With("ms", absl::ToInt64Milliseconds(held));
          ReleaseOnce(gate, state.get());
        });
    // `this` may be gone already (admitted at once, finished and done): only `state` here.
    absl::MutexLock lock(&state->mu);
    if (!state->admitted) state->ticket = ticket;
  }

  void OnCancel() override {
    uint64_t ticket = 0;
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->admitted) return;  // the admitted callback finishes the call
      ticket = state_->ticket;
    }
    if (gate_->Withdraw(ticket))
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled"));
  }

  void OnDone() override {
    ReleaseOnce(gate_, state_.get());
    delete this;  // NOLINT(cppcoreguidelines-owning-memory): gRPC reactors delete themselves.
  }

 private:
  UploadGate* const gate_;
  grpc::ByteBuffer* const response_;
  const std::string site_;
  const std::shared_ptr<const std::string> model_;
  const uint64_t offset_;
  const std::shared_ptr<CallState> state_;
};

}  // namespace

absl::StatusOr<ChunkRequest> CheckChunkRequest(const Downloads& downloads, const std::string& site,
                                               const grpc::ByteBuffer* request) {
  v1::PullModelChunkRequest parsed;
  RETURN_IF_ERROR(ParseRequest(request, "PullModelChunk", &parsed));
  ChunkRequest chunk;
  ASSIGN_OR_RETURN(chunk.model, downloads.model_for(site, parsed.work_id(), parsed.delta()));
  if (parsed.offset() >= chunk.model->size()) {
    return absl::OutOfRangeError(absl::StrCat("PullModelChunk: offset ", parsed.offset(),
                                              " is past the model's ", chunk.model->size(),
                                              " bytes"));
  }
  chunk.offset = parsed.offset();
  return chunk;
}

grpc::ServerUnaryReactor* StartModelDownload(const Downloads* downloads,
                                             grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response, std::string site) {
  absl::StatusOr<ChunkRequest> chunk = CheckChunkRequest(*downloads, site, request);
  if (!chunk.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(proto::ToGrpcStatus(chunk.status()));
    return reactor;
  }
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): gRPC reactors delete themselves (OnDone).
  auto* call = new ModelChunkCall(downloads->gate, response, std::move(site),
                                  std::move(chunk->model), chunk->offset);
  call->Start();
  return call;
}

}  // namespace tessera::coordinator::internal
