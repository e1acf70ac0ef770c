#include "client/chunked_upload.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/synchronization/notification.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/slice.h"
#include "proto/federation.pb.h"

namespace tessera::client {
namespace {

// Writes the chunks one after another, reads the one reply, and reports the call's end.
class Upload final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Upload(const std::string& bytes, bool wait_for_admission)
      : bytes_(bytes), wait_for_admission_(wait_for_admission) {}

  grpc::Status Run(grpc::GenericStub& stub, grpc::ClientContext* ctx, grpc::ByteBuffer* reply) {
    // Its size, so that the coordinator may read it alongside other small ones.
    ctx->AddMetadata(proto::kDeclaredUploadBytesMetadata, std::to_string(bytes_.size()));
    stub.PrepareBidiStreamingCall(ctx, kPushResultChunkedMethod, grpc::StubOptions(), this);
    StartRead(reply);
    if (!wait_for_admission_) WriteNext();
    StartCall();
    done_.WaitForNotification();
    return status_;
  }

  void OnWriteDone(bool ok) override {
    // Not ok: the call is over (refused, cancelled, broken); OnDone tells how.
    if (ok) WriteNext();
  }
  // The coordinator admitted the upload (or, not ok, the call is over: OnDone tells how).
  void OnReadInitialMetadataDone(bool ok) override {
    if (ok && wait_for_admission_) WriteNext();
  }
  void OnReadDone(bool /*ok*/) override {}
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

 private:
  void WriteNext() {
    if (offset_ >= bytes_.size()) {
      StartWritesDone();
      return;
    }
    v1::PushResultChunk chunk;
    if (offset_ == 0) chunk.set_total_bytes(bytes_.size());
    const size_t n = std::min(kUploadChunkBytes, bytes_.size() - offset_);
    chunk.set_data(std::string(std::string_view(bytes_).substr(offset_, n)));
    offset_ += n;
    const std::string wire = chunk.SerializeAsString();
    grpc::Slice slice(wire.data(), wire.size());
    current_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&current_);
  }

  const std::string& bytes_;
  const bool wait_for_admission_;
  size_t offset_ = 0;
  grpc::ByteBuffer current_;  // the chunk being written
  grpc::Status status_;
  absl::Notification done_;
};

}  // namespace

grpc::Status CallChunked(grpc::GenericStub& stub, grpc::ClientContext* ctx,
                         const std::string& request_bytes, bool wait_for_admission,
                         grpc::ByteBuffer* reply) {
  Upload upload(request_bytes, wait_for_admission);
  return upload.Run(stub, ctx, reply);
}

}  // namespace tessera::client
