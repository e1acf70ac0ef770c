#include "tests/fuzz/raw_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace tessera::fuzz {
namespace {

std::string MakeScratchDir() {
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    base = tmp;
  } else if (std::filesystem::is_directory("/dev/shm")) {
    base = "/dev/shm";
  }
  std::string pattern = base + "/tessera-fuzz-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<std::string> names;

  ~OpenDb() {
    for (rocksdb::ColumnFamilyHandle* h : handles)
      db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    if (db != nullptr) db->Close().PermitUncheckedError();
  }
};

absl::Status Open(const std::string& dir, OpenDb* out) {
  rocksdb::DBOptions options;
  options.max_file_opening_threads = 1;
  options.allow_fallocate = false;
  options.info_log_level = rocksdb::InfoLogLevel::FATAL_LEVEL;
  if (!rocksdb::DB::ListColumnFamilies(options, dir, &out->names).ok()) {
    return absl::InternalError("no database in " + dir);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : out->names)
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(options, dir, families, &out->handles, &db);
  if (!s.ok()) return absl::InternalError(s.ToString());
  out->db.reset(db);
  return absl::OkStatus();
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    auto* path = new std::string(MakeScratchDir());
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(ScratchDir(), ignored);
    });
    return path;
  }();
  return *dir;
}

void CopyStore(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all);
}

std::vector<std::string> Families(const std::string& dir) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok()) return {};
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<RawRecord> ReadRecords(FuzzInput& in, const std::vector<std::string>& families) {
  std::vector<RawRecord> records;
  while (!in.empty() && !families.empty()) {
    const uint8_t family = in.Byte();
    RawRecord record;
    record.family = families[(family & 0x7f) % families.size()];
    record.erase = (family & 0x80) != 0;
    record.key = std::string(in.Chunk8());
    record.value = std::string(in.Chunk16());
    records.push_back(std::move(record));
  }
  return records;
}

absl::Status WriteRecords(const std::string& dir, const std::vector<RawRecord>& records) {
  OpenDb open;
  if (absl::Status s = Open(dir, &open); !s.ok()) return s;
  rocksdb::WriteBatch batch;
  for (const RawRecord& record : records) {
    const auto it = std::find(open.names.begin(), open.names.end(), record.family);
    if (it == open.names.end()) continue;
    rocksdb::ColumnFamilyHandle* cf = open.handles[it - open.names.begin()];
    const rocksdb::Status s =
        record.erase ? batch.Delete(cf, record.key) : batch.Put(cf, record.key, record.value);
    if (!s.ok()) return absl::InternalError(s.ToString());
  }
  const rocksdb::Status s = open.db->Write(rocksdb::WriteOptions(), &batch);
  return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
}

std::vector<RawRecord> ReadAll(const std::string& dir) {
  OpenDb open;
  std::vector<RawRecord> records;
  if (!Open(dir, &open).ok()) return records;
  for (size_t i = 0; i < open.handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(
        open.db->NewIterator(rocksdb::ReadOptions(), open.handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      records.push_back({open.names[i], false, it->key().ToString(), it->value().ToString()});
    }
  }
  return records;
}

std::string EncodeRecords(const std::vector<RawRecord>& records,
                          const std::vector<std::string>& families) {
  FuzzWriter out;
  for (const RawRecord& record : records) {
    const auto it = std::find(families.begin(), families.end(), record.family);
    if (it == families.end()) continue;
    const uint8_t index = static_cast<uint8_t>(it - families.begin());
    out.Byte(record.erase ? index | 0x80 : index).Chunk8(record.key).Chunk16(record.value);
  }
  return out.bytes();
}

}  // namespace tessera::fuzz
