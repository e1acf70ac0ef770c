#include "coordinator/work_wire.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/internal/setup_bytes.h"
#include "grpcpp/support/slice.h"
#include "proto/transfer.h"

namespace tessera::coordinator {
namespace {

// PullWorkResponse.work: field 1, length-delimited.
constexpr char kWorkTag = 0x0A;
// PullModelChunkResponse.total: field 1, varint; .data: field 2, length-delimited.
constexpr char kTotalTag = 0x08;
constexpr char kDataTag = 0x12;

// A slice over bytes [offset, offset + size) of `bytes` that holds a reference to them
// until gRPC releases it.
grpc::Slice SharedSlice(const std::shared_ptr<const std::string>& bytes, size_t offset,
                        size_t size) {
  auto* keep = new std::shared_ptr<const std::string>(bytes);
  return grpc::Slice(
      // gRPC only reads a slice it is given to send.
      const_cast<char*>(bytes->data() + offset),  // NOLINT(cppcoreguidelines-pro-type-const-cast)
      size,
      [](void* user_data) { delete static_cast<std::shared_ptr<const std::string>*>(user_data); },
      keep);
}

}  // namespace

absl::Status ParseRequest(const grpc::ByteBuffer* request, const char* method,
                          google::protobuf::MessageLite* message) {
  std::vector<grpc::Slice> slices;
  if (request == nullptr || !request->Dump(&slices).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(method, ": unreadable request"));
  }
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (!message->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(method, ": the request does not parse"));
  }
  return absl::OkStatus();
}

bool TakesDelta(const PostedItem& item, const v1::PullWorkRequest& request) {
  if (item.delta == nullptr || !request.accepts_model_delta()) return false;
  const int listed =
      std::min(request.held_model_hashes_size(), static_cast<int>(proto::kMaxHeldModels));
  for (int i = 0; i < listed; ++i) {
    if (request.held_model_hashes(i) == item.delta->base_hash) return true;
  }
  return false;
}

grpc::ByteBuffer PullWorkResponseBytes(const PostedItem& item, std::string_view crl_pem,
                                       const v1::PullWorkRequest& request) {
  v1::WorkItem own = item.own;
  own.set_crl_pem(std::string(crl_pem));
  std::string own_bytes = own.SerializeAsString();
  own_bytes += item.own_tail.head;
  // The client's share relay, if any, and the step's shared bytes: sent as they are kept.
  const std::shared_ptr<const std::string>& relay = item.own_tail.shared;
  const bool with_relay = relay != nullptr && !relay->empty();
  const std::shared_ptr<const std::string>& tail =
      TakesDelta(item, request) ? item.delta->shared : item.shared;
  const bool shared = tail != nullptr && !tail->empty();
  std::string head;
  head.reserve(own_bytes.size() + 11);
  head.push_back(kWorkTag);
  internal::AppendVarint(
      own_bytes.size() + (with_relay ? relay->size() : 0) + (shared ? tail->size() : 0), &head);
  head += own_bytes;
  std::vector<grpc::Slice> slices;
  slices.emplace_back(head);
  if (with_relay) slices.push_back(SharedSlice(relay, 0, relay->size()));
  if (shared) slices.push_back(SharedSlice(tail, 0, tail->size()));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::ByteBuffer ModelChunkResponseBytes(const std::shared_ptr<const std::string>& model,
                                         uint64_t offset) {
  const size_t size = std::min<size_t>(proto::kModelChunkBytes, model->size() - offset);
  std::string head;
  head.push_back(kTotalTag);
  internal::AppendVarint(model->size(), &head);
  head.push_back(kDataTag);
  internal::AppendVarint(size, &head);
  std::vector<grpc::Slice> slices;
  slices.emplace_back(head);
  slices.push_back(SharedSlice(model, offset, size));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::ByteBuffer EmptyPullWorkResponse() {
  grpc::Slice nothing;
  return grpc::ByteBuffer(&nothing, 1);
}

}  // namespace tessera::coordinator
