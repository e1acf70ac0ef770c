#include "client/internal/recorded_caller.h"

#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/chunked_upload.h"
#include "common/status.h"
#include "proto/grpc_status.h"
#include "proto/transfer.h"

namespace tessera::client::internal {

bool CallGuard::Enter(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (stop_->HasBeenNotified()) return false;
  current_ = ctx;
  return true;
}

void CallGuard::Leave() {
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
}

void CallGuard::CancelCurrent() {
  absl::MutexLock lock(&mu_);
  if (current_ != nullptr) current_->TryCancel();
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

RecordedCaller::RecordedCaller(std::shared_ptr<grpc::Channel> channel, EgressLedger* ledger,
                               CallGuard* guard, ClientMetrics* meters, std::string instance_id)
    : stub_(std::move(channel)),
      ledger_(ledger),
      guard_(guard),
      meters_(meters),
      instance_id_(std::move(instance_id)) {}

absl::Status RecordedCaller::Call(grpc::ClientContext* ctx, const char* method,
                                  const google::protobuf::MessageLite& request,
                                  const EgressMessage& what,
                                  google::protobuf::MessageLite* response) {
  absl::StatusOr<std::string> serialised = SentBytes(request);
  if (!serialised.ok())
    return absl::InternalError(absl::StrCat(method, ": cannot serialise the request"));
  const std::string bytes = *std::move(serialised);
  absl::Status recorded = ledger_->Record(what, bytes, absl::Now());
  if (!recorded.ok()) {
    return absl::InternalError(
        absl::StrCat("egress ledger: ", recorded.message(), " (nothing sent)"));
  }
  grpc::ByteBuffer received;
  grpc::Status st;
  const bool admits_uploads = uploads_wait_for_admission_.load();
  const size_t chunked_above = admits_uploads ? proto::kAdmittedUploadBytes : kUploadChunkBytes;
  if (std::string_view(method) == kPushResultMethod && bytes.size() > chunked_above) {
    // A masked input: the same bytes, in chunks (chunked_upload.h).
    st = Guarded(ctx, [&] { return CallChunked(stub_, ctx, bytes, admits_uploads, &received); });
    if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      // A coordinator that predates chunked uploads: the answer goes whole.
      grpc::ClientContext whole;
      whole.set_deadline(ctx->deadline());
      st = Unary(&whole, method, bytes, &received);
    }
  } else {
    st = Unary(ctx, method, bytes, &received);
  }
  RETURN_IF_ERROR(proto::FromGrpcStatus(st));
  std::vector<grpc::Slice> slices;
  std::string reply;
  if (!received.Dump(&slices).ok()) return absl::InternalError("unreadable reply");
  for (const grpc::Slice& s : slices) {
    reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  meters_->Call(method, bytes.size(), reply.size());
  if (!response->ParseFromString(reply)) {
    return absl::InternalError(absl::StrCat(method, ": the reply does not parse"));
  }
  return absl::OkStatus();
}

grpc::Status RecordedCaller::Unary(grpc::ClientContext* ctx, const char* method,
                                   const std::string& bytes, grpc::ByteBuffer* received) {
  grpc::Slice slice(bytes.data(), bytes.size());
  grpc::ByteBuffer sent(&slice, 1);
  return Guarded(ctx, [&] {
    absl::Notification done;
    grpc::Status st;
    stub_.UnaryCall(ctx, method, grpc::StubOptions(), &sent, received, [&](grpc::Status s) {
      st = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    return st;
  });
}

}  // namespace tessera::client::internal
