// A closed RocksDB database opened behind its owner's back, for tests that damage or
// inspect a store (tests/client/site_store*_test.cc, tests/coordinator/rocksdb_store_test.cc).
// Failures are gtest failures (ASSERT/EXPECT). Not thread-safe; the store must be closed.
#ifndef TESSERA_TESTS_TESTING_RAW_ROCKSDB_H_
#define TESSERA_TESTS_TESTING_RAW_ROCKSDB_H_

#include <functional>
#include <map>
#include <string>

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace tessera::testing {

// The column-family handles of an open database, by family name.
using RawFamilies = std::map<std::string, rocksdb::ColumnFamilyHandle*>;

// Opens the database in `dir` with every column family it has, calls `body` with it and its
// families, and closes it.
void WithRawDb(const std::string& dir, const std::function<void(rocksdb::DB*, RawFamilies&)>& body);

// A synced Put of `value` under `key` in family `family`; a failure if there is no such
// family.
void PutRaw(const std::string& dir, const std::string& family, const std::string& key,
            const std::string& value);

// A synced Delete of `key` in family `family`.
void DeleteRaw(const std::string& dir, const std::string& family, const std::string& key);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_RAW_ROCKSDB_H_
