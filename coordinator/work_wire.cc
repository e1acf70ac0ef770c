#include "coordinator/work_wire.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/slice.h"
#include "proto/transfer.h"

namespace tessera::coordinator {
namespace {

// PullWorkResponse.work: field 1, length-delimited.
constexpr char kWorkTag = 0x0A;
// PullModelChunkResponse.total: field 1, varint; .data: field 2, length-delimited.
constexpr char kTotalTag = 0x08;
constexpr char kDataTag = 0x12;

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

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

grpc::ByteBuffer PullWorkResponseBytes(const PostedItem& item, std::string_view crl_pem) {
  v1::WorkItem own = item.own;
  own.set_crl_pem(std::string(crl_pem));
  const std::string own_bytes = own.SerializeAsString();
  const bool shared = item.shared != nullptr && !item.shared->empty();
  std::string head;
  head.reserve(own_bytes.size() + 11);
  head.push_back(kWorkTag);
  AppendVarint(own_bytes.size() + (shared ? item.shared->size() : 0), &head);
  head += own_bytes;
  std::vector<grpc::Slice> slices;
  slices.emplace_back(head);
  if (shared) slices.push_back(SharedSlice(item.shared, 0, item.shared->size()));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::ByteBuffer ModelChunkResponseBytes(const std::shared_ptr<const std::string>& model,
                                         uint64_t offset) {
  const size_t size = std::min<size_t>(proto::kModelChunkBytes, model->size() - offset);
  std::string head;
  head.push_back(kTotalTag);
  AppendVarint(model->size(), &head);
  head.push_back(kDataTag);
  AppendVarint(size, &head);
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
