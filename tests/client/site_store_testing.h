// Test code shared by the site store's tests (tests/client/site_store*_test.cc): records
// to store, and for the RocksDB store, helpers that open, read or damage a closed store
// behind its back, and the fixture that makes one. Not thread-safe; failures are gtest
// failures (ASSERT/EXPECT).
#ifndef TESSERA_TESTS_CLIENT_SITE_STORE_TESTING_H_
#define TESSERA_TESTS_CLIENT_SITE_STORE_TESTING_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/site_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_state.pb.h"
#include "tests/testing/raw_rocksdb.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client::site_store_testing {

// ---- Records

// A 32-byte contribution key: `fill` repeated, so that keys sort like their fill bytes.
std::string Key(unsigned char fill);
// Lowercase hex, as the store's messages show keys.
std::string Hex(const std::string& bytes);
// Incompressible bytes standing in for a state-machine snapshot, distinct per `seed`, so a
// scan of the store's files finds them verbatim.
std::string Secret(uint64_t seed);
// Incompressible bytes that a session record made with `seed` carries in the clear (its
// model hash), to find the files holding the record.
std::string RecordMark(uint64_t seed);
// The recorded answer to SecAgg step `step`.
v1::StepAnswer Answer(uint32_t step);
// An open session `label` for contribution `key`, its snapshot Secret(secret_seed), its
// model hash RecordMark(secret_seed), one step answered.
v1::SiteSessionRecord MakeSession(const std::string& label, const std::string& key,
                                  uint64_t secret_seed = 1);
v1::ContributionRecord MakeContribution(const std::string& key, const std::string& label);
// The session as it is when its masked input leaves: three steps answered.
v1::SiteSessionRecord Sent(v1::SiteSessionRecord session);
std::vector<std::string> Labels(const std::vector<v1::SiteSessionRecord>& sessions);
std::vector<std::string> Keys(const std::vector<v1::ContributionRecord>& contributions);

// ---- RocksDB only: a closed store, behind its back

// WithRawDb, PutRaw and DeleteRaw: tests/testing/raw_rocksdb.h.
using ::tessera::testing::DeleteRaw;
using ::tessera::testing::PutRaw;
using ::tessera::testing::RawFamilies;
using ::tessera::testing::WithRawDb;

// Regular files of `dir` whose names end with `suffix`, sorted by name (RocksDB's file
// numbers are zero-padded, so the last is the newest).
std::vector<std::string> FilesEndingWith(const std::string& dir, const std::string& suffix);
// The sizes of those files, added up.
uint64_t BytesOfFilesEndingWith(const std::string& dir, const std::string& suffix);
std::string ReadAll(const std::string& path);
// XORs the byte at `offset` of `path` with 0x5a.
void FlipByte(const std::string& path, uint64_t offset);
// Paths, relative to `dir`, of the files under `dir` holding `needle` anywhere in their
// bytes.
std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle);
// The keys the store in `dir` holds for its open sessions (SESSION_KEYS' used slots).
std::vector<std::string> HeldKeys(const std::string& dir);
// "0700", or "missing".
std::string Mode(const std::string& path);
// What every DATA_LOSS must say besides the specifics.
::testing::Matcher<std::string> SaysRestore(const std::string& dir);

class SiteStoreRocksDbTest : public ::testing::Test {
 protected:
  // A nested path that does not exist yet: opening creates it.
  std::string path() const { return dir_.File("data/site_store"); }

  // A closed store holding session s1 (sent, contribution Key(1)) and s2 (open).
  void Populate(const std::string& dir) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SiteStore> store, OpenSiteStore(dir));
    const v1::ContributionRecord contribution = MakeContribution(Key(1), "s1");
    ASSERT_OK(store->PutSession(Sent(MakeSession("s1", Key(1), 1)), &contribution));
    ASSERT_OK(store->PutSession(MakeSession("s2", Key(2), 2), nullptr));
  }

  // A copy of `from` at a new path (mode kept), for one damage case each.
  std::string CopyOf(const std::string& from) {
    std::string to = dir_.File(absl::StrCat("copy-", copies_++));
    std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
    std::filesystem::permissions(to, std::filesystem::perms::owner_all);
    return to;
  }

  // For each table file of the closed store `original` and a few offsets in it (a data
  // block, the index, the footer's unused bytes, which only the whole-file checksum covers,
  // and the magic number): flips that byte in a fresh copy and expects `open(copy)` to be
  // DATA_LOSS naming the copy and the file.
  template <typename Open>
  void ExpectEveryTableFlipIsDataLoss(const std::string& original, Open open) {
    for (const std::string& table : FilesEndingWith(original, ".sst")) {
      const std::string name = std::filesystem::path(table).filename().string();
      const uint64_t size = std::filesystem::file_size(table);
      for (uint64_t offset : {uint64_t{0}, size / 2, size - 40, size - 1}) {
        const std::string copy = CopyOf(original);
        FlipByte(absl::StrCat(copy, "/", name), offset);
        EXPECT_THAT(open(copy),
                    ::tessera::testing::StatusIs(
                        absl::StatusCode::kDataLoss,
                        ::testing::AllOf(SaysRestore(copy), ::testing::HasSubstr(name))))
            << name << " byte " << offset << " of " << size;
      }
    }
  }

  testing::TempDir dir_;
  int copies_ = 0;
};

}  // namespace tessera::client::site_store_testing

#endif  // TESSERA_TESTS_CLIENT_SITE_STORE_TESTING_H_
