// Private to client/: how the site daemon (daemon.cc) calls the coordinator. Every request
// leaves through RecordedCaller: serialised once (deterministically), recorded in the
// egress ledger with the SHA-256 of those bytes, then handed to gRPC as those very bytes (a
// generic call on a ByteBuffer), so that what the ledger hashed is what went on the wire.
// A secure-aggregation answer's entry was written with its session record already
// (EgressLedger::RecordWith): the ledger finds it and appends none.
// A large PushResult goes in chunks (client/chunked_upload.h). CallGuard lets the
// daemon's stop path cancel the call in flight, so SIGTERM never waits out a long-poll.
//
// Thread safety: CallGuard is thread-safe; RecordedCaller is for the daemon's one loop
// thread (its CallGuard may be used from another).
#ifndef TESSERA_CLIENT_INTERNAL_RECORDED_CALLER_H_
#define TESSERA_CLIENT_INTERNAL_RECORDED_CALLER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/ledger.h"
#include "client/monitoring.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace tessera::client::internal {

// The call in flight, cancelled at stop. Thread-safe.
class CallGuard {
 public:
  // `stop` must outlive the guard.
  explicit CallGuard(absl::Notification* stop) : stop_(stop) {}

  // Registers `ctx` as the call in flight; returns false if already stopping.
  bool Enter(grpc::ClientContext* ctx);
  void Leave();
  // Cancels the call in flight, if any.
  void CancelCurrent();

 private:
  absl::Notification* const stop_;
  absl::Mutex mu_;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// `ctx`'s deadline: `timeout` from now.
void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout);

class RecordedCaller {
 public:
  // `ledger`, `guard` and `meters` must outlive the caller. `instance_id` goes with every
  // call (metadata "tessera-instance"): the coordinator binds this site's identity to this
  // daemon (coordinator/access_control.h).
  RecordedCaller(std::shared_ptr<grpc::Channel> channel, EgressLedger* ledger, CallGuard* guard,
                 ClientMetrics* meters, std::string instance_id);

  // `request` to `method` ("/tessera.v1.Federation/..."), recorded as `what` first; the
  // reply parsed into `response`. `ctx` has its deadline set. An error recording the
  // message is returned as INTERNAL (not transient: nothing was sent); the call's error
  // as its absl status; INTERNAL for a reply that does not parse.
  absl::Status Call(grpc::ClientContext* ctx, const char* method,
                    const google::protobuf::MessageLite& request, const EgressMessage& what,
                    google::protobuf::MessageLite* response);

  // What the coordinator's Hello said (HelloResponse.uploads_wait_for_admission): answers
  // above proto::kAdmittedUploadBytes then go chunked, each written once the coordinator
  // admits it (chunked_upload.h). False until set: above kUploadChunkBytes, written at once.
  void SetUploadsWaitForAdmission(bool wait) { uploads_wait_for_admission_.store(wait); }

 private:
  // `bytes` as one message of `method`, on `ctx` (its deadline set).
  grpc::Status Unary(grpc::ClientContext* ctx, const char* method, const std::string& bytes,
                     grpc::ByteBuffer* received);

  // Runs the call `send` makes on `ctx` as this daemon's instance, as the call in flight
  // (cancelled when the daemon stops); CANCELLED without calling if it is stopping.
  template <typename Send>
  grpc::Status Guarded(grpc::ClientContext* ctx, Send send) {
    ctx->AddMetadata("tessera-instance", instance_id_);
    if (!guard_->Enter(ctx)) return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
    grpc::Status st = send();
    guard_->Leave();
    return st;
  }

  grpc::GenericStub stub_;
  EgressLedger* const ledger_;
  CallGuard* const guard_;
  ClientMetrics* const meters_;
  const std::string instance_id_;
  std::atomic<bool> uploads_wait_for_admission_{false};
};

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_RECORDED_CALLER_H_
