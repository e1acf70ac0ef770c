#include "coordinator/internal/store_writes.h"

#include <limits>
#include <vector>

#include "coordinator/internal/store_files.h"
#include "rocksdb/slice.h"

namespace tessera::coordinator::internal {

absl::Status CheckRecordSize(size_t bytes, const char* kind) {
  if (bytes > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(kind, " record is larger than 2 GiB"));
  }
  return absl::OkStatus();
}

size_t BatchBytes(std::initializer_list<size_t> sizes) {
  size_t total = 12;  // the batch's header
  for (const size_t size : sizes) total += size + 16;
  return total;
}

absl::Status PutPiecesOrDelete(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                               std::span<const std::string_view> pieces, rocksdb::WriteBatch* batch,
                               const std::string& what) {
  if (pieces.empty()) return FromRocksDb(batch->Delete(family, key), what);
  const rocksdb::Slice key_slice(key);
  const std::vector<rocksdb::Slice> slices(pieces.begin(), pieces.end());
  return FromRocksDb(
      batch->Put(family, rocksdb::SliceParts(&key_slice, 1),
                 rocksdb::SliceParts(slices.data(), static_cast<int>(slices.size()))),
      what);
}

}  // namespace tessera::coordinator::internal
