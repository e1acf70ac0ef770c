// Shared by the record fuzz targets (coordinator_records, site_records): the raw records of
// an input laid out as for the store targets (raw_store.h), applied the way a database
// would (a later Put of the same key replaces, an erase removes), and the canonical bytes
// of a message (deterministic serialisation) for "decodes again to the same record".
#ifndef TESSERA_TESTS_FUZZ_RECORD_FUZZ_UTIL_H_
#define TESSERA_TESTS_FUZZ_RECORD_FUZZ_UTIL_H_

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message_lite.h"
#include "proto/deterministic.h"
#include "tests/fuzz/raw_store.h"

namespace tessera::fuzz {

// family -> key -> value, in key order (RocksDB's bytewise order), after `records`.
inline std::map<std::string, std::map<std::string, std::string>> Apply(
    const std::vector<RawRecord>& records) {
  std::map<std::string, std::map<std::string, std::string>> families;
  for (const RawRecord& record : records) {
    if (record.erase) {
      families[record.family].erase(record.key);
    } else {
      families[record.family][record.key] = record.value;
    }
  }
  return families;
}

inline std::string Canonical(const google::protobuf::MessageLite& message) {
  absl::StatusOr<std::string> bytes = proto::DeterministicBytes(message, "a record");
  if (!bytes.ok()) std::abort();
  return *std::move(bytes);
}

// A decoder's refusal must be DATA_LOSS (a damaged record), never another code.
inline void RequireDataLossOrOk(const absl::Status& status) {
  if (!status.ok() && status.code() != absl::StatusCode::kDataLoss) std::abort();
}

// `decode(key, canonical bytes of a record it accepted)` must accept them and give the
// same canonical bytes.
template <typename Decode, typename Record>
void RequireStable(Decode decode, const std::string& key, const Record& record) {
  const std::string bytes = Canonical(record);
  auto again = decode(key, bytes);
  if (!again.ok() || Canonical(*again) != bytes) std::abort();
}

// `decode(key, value)` checked as above; returns what it returned.
template <typename Decode>
auto DecodeChecked(Decode decode, const std::string& key, const std::string& value) {
  auto record = decode(key, value);
  RequireDataLossOrOk(record.status());
  if (record.ok()) RequireStable(decode, key, *record);
  return record;
}

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_RECORD_FUZZ_UTIL_H_
