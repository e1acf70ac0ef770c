#include "tests/testing/raw_rocksdb.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace tessera::testing {

void WithRawDb(const std::string& dir,
               const std::function<void(rocksdb::DB*, RawFamilies&)>& body) {
  rocksdb::DBOptions options;
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(names.size());
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, families, &handles, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  RawFamilies by_name;
  for (rocksdb::ColumnFamilyHandle* h : handles) by_name[h->GetName()] = h;
  body(db.get(), by_name);
  for (rocksdb::ColumnFamilyHandle* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
}

void PutRaw(const std::string& dir, const std::string& family, const std::string& key,
            const std::string& value) {
  WithRawDb(dir, [&](rocksdb::DB* db, RawFamilies& cf) {
    ASSERT_TRUE(cf.count(family)) << "no column family " << family;
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    const rocksdb::Status s = db->Put(write_options, cf[family], key, value);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
}

void DeleteRaw(const std::string& dir, const std::string& family, const std::string& key) {
  WithRawDb(dir, [&](rocksdb::DB* db, RawFamilies& cf) {
    ASSERT_TRUE(cf.count(family)) << "no column family " << family;
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    const rocksdb::Status s = db->Delete(write_options, cf[family], key);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
}

}  // namespace tessera::testing
