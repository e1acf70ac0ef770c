// How the coordinator's RocksDB store (rocksdb_store.cc) makes its writes: records
// serialised and checked to parse back, write batches reserved at once, model-sized values
// handed to RocksDB as pieces (views) instead of copies. Included only by that file (it
// brings in RocksDB's headers). Pure functions; no I/O.
#ifndef TESSERA_COORDINATOR_INTERNAL_STORE_WRITES_H_
#define TESSERA_COORDINATOR_INTERNAL_STORE_WRITES_H_

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace tessera::coordinator::internal {

// A record must parse back: protobuf reads at most 2 GiB. INVALID_ARGUMENT naming `kind`
// ("inflight") otherwise.
absl::Status CheckRecordSize(size_t bytes, const char* kind);

// `message` serialised, if it will parse back (CheckRecordSize).
template <typename Message>
absl::StatusOr<std::string> SerializeValue(const Message& message, const char* kind) {
  RETURN_IF_ERROR(CheckRecordSize(message.ByteSizeLong(), kind));
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("cannot serialise ", kind, " record"));
  }
  return bytes;
}

// A write batch's buffer, reserved at once for these keys and values (each with room for
// its record's framing: a tag, a family id, a length). Grown by appends instead, a batch
// holding a 4 MB value briefly held twice that while its buffer doubled.
size_t BatchBytes(std::initializer_list<size_t> sizes);

// Puts `pieces` (one value, written one piece after the other) under `key` of `family` in
// `batch`, or deletes the key if there are none. Errors through FromRocksDb with `what`.
absl::Status PutPiecesOrDelete(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                               std::span<const std::string_view> pieces, rocksdb::WriteBatch* batch,
                               const std::string& what);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_STORE_WRITES_H_
