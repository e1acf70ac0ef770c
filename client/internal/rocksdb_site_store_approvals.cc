// The RocksDB SiteStore's approvals family (client/site_store.h, "Approvals";
// proto/site_approval.proto): records keyed by task id, 0, spec hash.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/internal/approval_rules.h"
#include "client/internal/rocksdb_site_store.h"
#include "client/internal/site_store_files.h"
#include "client/internal/site_store_rules.h"
#include "common/status.h"
#include "proto/site_approval.pb.h"
#include "rocksdb/write_batch.h"

namespace tessera::client::internal {

absl::StatusOr<v1::ApprovalRecord> RocksDbSiteStore::GetApproval(const std::string& task_id,
                                                                 const std::string& spec_hash) {
  RETURN_IF_ERROR(CheckApprovalKey("GetApproval", task_id, spec_hash));
  const std::string key = ApprovalKey(task_id, spec_hash);
  ASSIGN_OR_RETURN(std::optional<std::string> value, Get(Family(kApprovalsCf), key));
  if (!value.has_value()) return NoApproval(task_id, spec_hash);
  return DecodeApproval(directory_, key, *value);
}

absl::StatusOr<std::vector<v1::ApprovalRecord>> RocksDbSiteStore::ListApprovals() {
  std::vector<v1::ApprovalRecord> out;
  RETURN_IF_ERROR(ForEach(Family(kApprovalsCf), [&](std::string_view key, std::string_view value) {
    ASSIGN_OR_RETURN(v1::ApprovalRecord record, DecodeApproval(directory_, key, value));
    out.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status RocksDbSiteStore::PutApproval(const v1::ApprovalRecord& record) {
  RETURN_IF_ERROR(Writable("PutApproval"));
  RETURN_IF_ERROR(CheckPutApproval(record));
  std::string value;
  if (!record.SerializeToString(&value)) {
    return absl::InternalError("PutApproval: cannot serialise the record");
  }
  const std::string key = ApprovalKey(record.task_id(), record.spec_hash());
  const std::string what =
      absl::StrCat("PutApproval task ", record.task_id(), ", spec ", Hex(record.spec_hash()));
  rocksdb::ColumnFamilyHandle* family = Family(kApprovalsCf);
  if (family == nullptr) {
    return absl::InternalError(absl::StrCat(what, ": the approvals family is not open"));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<std::string> stored, Get(family, key));
  if (stored.has_value()) {
    ASSIGN_OR_RETURN(v1::ApprovalRecord previous, DecodeApproval(directory_, key, *stored));
    RETURN_IF_ERROR(CheckDecisionFinal(previous, record));
  }
  rocksdb::WriteBatch batch;
  RETURN_IF_ERROR(FromRocksDb(batch.Put(family, key, value), directory_, what));
  return Write(&batch, what);
}

}  // namespace tessera::client::internal
