#include "tests/client/site_store_testing.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace tessera::client::site_store_testing {

namespace fs = std::filesystem;

// A 32-byte contribution key: `fill` repeated, so that keys sort like their fill bytes.
std::string Key(unsigned char fill) { return std::string(32, static_cast<char>(fill)); }

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// Incompressible bytes standing in for a state-machine snapshot, distinct per `seed`, so a
// scan of the store's files finds them verbatim.
std::string Secret(uint64_t seed) {
  std::string out;
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (int i = 0; i < 96; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out.push_back(static_cast<char>(x & 0xff));
  }
  return out;
}

std::string RecordMark(uint64_t seed) { return Secret(seed + 1'000'000); }

v1::StepAnswer Answer(uint32_t step) {
  v1::StepAnswer answer;
  answer.set_step(step);
  answer.set_request_sha256(std::string(32, static_cast<char>(0xa0 + step)));
  answer.mutable_answer()->set_work_id(absl::StrCat("work-", step));
  answer.mutable_answer()->mutable_secagg()->mutable_advertisement()->set_setup_digest(
      std::string(32, '\x5d'));
  answer.set_recorded_unix_ms(1700000000000 + step);
  return answer;
}

v1::SiteSessionRecord MakeSession(const std::string& label, const std::string& key,
                                  uint64_t secret_seed) {
  v1::SiteSessionRecord session;
  session.set_session(label);
  session.set_setup_digest(std::string(32, '\x5d'));
  session.set_contribution_key(key);
  session.set_state(v1::SITE_SESSION_OPEN);
  session.set_task_id("task-1");
  session.set_round(2);
  session.set_stage(v1::STAGE_FIT);
  session.set_machine(Secret(secret_seed));
  session.set_model_hash(RecordMark(secret_seed));
  *session.add_answers() = Answer(1);
  session.set_expires_unix_ms(1700000600000);
  return session;
}

v1::ContributionRecord MakeContribution(const std::string& key, const std::string& label) {
  v1::ContributionRecord record;
  record.set_key(key);
  record.set_session(label);
  record.set_setup_digest(std::string(32, '\x5d'));
  record.set_sent_sha256(std::string(32, '\x3c'));
  record.set_task_id("task-1");
  record.set_round(2);
  record.set_stage(v1::STAGE_FIT);
  record.set_dataset_id("heart");
  record.set_model_hash(std::string(32, '\x11'));
  record.set_recorded_unix_ms(1700000000123);
  return record;
}

// The session as it is when its masked input leaves: three steps answered.
v1::SiteSessionRecord Sent(v1::SiteSessionRecord session) {
  *session.add_answers() = Answer(2);
  *session.add_answers() = Answer(3);
  return session;
}

std::vector<std::string> Labels(const std::vector<v1::SiteSessionRecord>& sessions) {
  std::vector<std::string> labels;
  labels.reserve(sessions.size());
  for (const auto& s : sessions) labels.push_back(s.session());
  return labels;
}

std::vector<std::string> Keys(const std::vector<v1::ContributionRecord>& contributions) {
  std::vector<std::string> keys;
  keys.reserve(contributions.size());
  for (const auto& c : contributions) keys.push_back(c.key());
  return keys;
}

// Regular files of `dir` whose names end with `suffix`, sorted by name (RocksDB's file
// numbers are zero-padded, so the last is the newest).
std::vector<std::string> FilesEndingWith(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.ends_with(suffix)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t BytesOfFilesEndingWith(const std::string& dir, const std::string& suffix) {
  uint64_t bytes = 0;
  for (const std::string& file : FilesEndingWith(dir, suffix)) bytes += fs::file_size(file);
  return bytes;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
  ASSERT_TRUE(f) << path << " @" << offset;
}

// Names of the files in `dir` holding `needle` anywhere in their bytes.
std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (ReadAll(e.path().string()).find(needle) != std::string::npos) {
      out.push_back(fs::relative(e.path(), dir).string());
    }
  }
  return out;
}

std::vector<std::string> HeldKeys(const std::string& dir) {
  const std::string bytes = ReadAll(dir + "/SESSION_KEYS");
  std::vector<std::string> keys;
  for (size_t at = 0; at + 64 <= bytes.size(); at += 64) {
    if (bytes.substr(at, 32) != std::string(32, '\0')) keys.push_back(bytes.substr(at + 32, 32));
  }
  return keys;
}

std::string Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return absl::StrFormat("%04o", st.st_mode & 07777);
}

// What every DATA_LOSS must say besides the specifics.
::testing::Matcher<std::string> SaysRestore(const std::string& dir) {
  return ::testing::AllOf(::testing::HasSubstr(dir),
                          ::testing::HasSubstr("restore it from a backup"),
                          ::testing::HasSubstr("do not delete"));
}

}  // namespace tessera::client::site_store_testing
