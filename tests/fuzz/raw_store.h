// Stored records written behind a store's back, for the store fuzz targets: a scratch
// directory, a copy of a freshly made store in it, and raw Put/Delete of fuzzed records in
// any of its column families (RocksDB's own API, as damage or a foreign writer would).
//
// Input layout (FuzzInput): repeated { family byte, key (1-byte length), value (2-byte
// length) }; the family is byte % (number of families, sorted by name), and a byte with
// the high bit set deletes the key instead. Not thread-safe.
#ifndef TESSERA_TESTS_FUZZ_RAW_STORE_H_
#define TESSERA_TESTS_FUZZ_RAW_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/fuzz/fuzz_input.h"

namespace tessera::fuzz {

struct RawRecord {
  std::string family;
  bool erase = false;
  std::string key;
  std::string value;
};

// A fresh scratch directory (under $TMPDIR, else /dev/shm or /tmp), removed at exit.
const std::string& ScratchDir();

// Replaces `to` by a copy of `from` (mode 0700).
void CopyStore(const std::string& from, const std::string& to);

// The records of `in`, families named from `families` (sorted).
std::vector<RawRecord> ReadRecords(FuzzInput& in, const std::vector<std::string>& families);

// The column families of the database in `dir`, sorted by name.
std::vector<std::string> Families(const std::string& dir);

// Writes `records` into the closed database in `dir` (one batch, not synced: the store
// opened next in this process reads them from the write-ahead log).
absl::Status WriteRecords(const std::string& dir, const std::vector<RawRecord>& records);

// Every record of the closed database in `dir`, family by family (for make_corpus).
std::vector<RawRecord> ReadAll(const std::string& dir);

// The input that writes `records` (for make_corpus); `families` as for ReadRecords.
std::string EncodeRecords(const std::vector<RawRecord>& records,
                          const std::vector<std::string>& families);

}  // namespace tessera::fuzz

#endif  // TESSERA_TESTS_FUZZ_RAW_STORE_H_
