// The site store with real daemons (issue 7, "Must show"): it survives a SIGKILL between
// "recorded" and "sent" — the restarted site sends the recorded masked input, once, and
// never a second one — and a damaged store (a table file or the write-ahead log) stops the
// daemon at start-up with an error naming the store and telling the operator to restore
// it from a backup, before it says Hello to the coordinator.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/site_store.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/site_state.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kKillBeforeSend[] = "TESSERA_TEST_KILL_BEFORE_SEND";

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

// Where each logical record of a RocksDB write-ahead log starts (its format: 32 KiB blocks
// of physical records, each a 7-byte header — CRC32C, length, type — and a payload; a block
// tail shorter than a header is padding; types 1 FULL and 2 FIRST start a record).
std::vector<uint64_t> LogRecordStarts(const std::string& path) {
  constexpr uint64_t kBlock = 32768;
  constexpr uint64_t kHeader = 7;
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<uint64_t> starts;
  uint64_t at = 0;
  while (at + kHeader <= bytes.size()) {
    const uint64_t left_in_block = kBlock - at % kBlock;
    if (left_in_block < kHeader) {
      at += left_in_block;
      continue;
    }
    const auto byte = [&](uint64_t i) { return static_cast<uint8_t>(bytes[at + i]); };
    const uint64_t length = byte(4) | (static_cast<uint64_t>(byte(5)) << 8);
    const uint8_t type = byte(6);
    if (type == 0) break;  // zeroes: the end of what was written
    if (type == 1 || type == 2) starts.push_back(at);
    at += kHeader + length;
  }
  return starts;
}

// How many times `needle` occurs in `text`.
int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// The RocksDB files of `dir` whose names are <number>.<ext>, newest (highest number) last.
std::vector<std::string> NumberedFiles(const std::string& dir, const std::string& ext) {
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with("." + ext)) continue;
    uint64_t number = 0;
    if (!absl::SimpleAtoi(name.substr(0, name.size() - ext.size() - 1), &number)) continue;
    found.emplace_back(number, entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  paths.reserve(found.size());
  for (auto& [number, path] : found) paths.push_back(path);
  return paths;
}

// The store's own files (RocksDB's info LOG files aside, which every open rotates), with
// their sizes.
std::map<std::string, uint64_t> StoreFiles(const std::string& dir) {
  std::map<std::string, uint64_t> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.starts_with("LOG")) continue;
    files[name] = static_cast<uint64_t>(entry.file_size());
  }
  return files;
}

uint64_t FileSize(const std::string& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<uint64_t>(size);
}

// Inverts `count` bytes of `path` from `offset` on, in place.
void FlipBytes(const std::string& path, uint64_t offset, int count) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << path;
  for (int i = 0; i < count; ++i) {
    f.seekg(static_cast<std::streamoff>(offset + i));
    char c = 0;
    ASSERT_TRUE(f.get(c)) << path << " has no byte at " << offset + i;
    f.seekp(static_cast<std::streamoff>(offset + i));
    f.put(static_cast<char>(~c));
  }
  f.close();
  ASSERT_FALSE(f.fail()) << path;
}

// The FIT contributions `store` recorded for `round`.
std::vector<v1::ContributionRecord> FitContributions(client::SiteStore& store, uint32_t round) {
  absl::StatusOr<std::vector<v1::ContributionRecord>> all = store.ListContributions();
  EXPECT_OK(all.status());
  std::vector<v1::ContributionRecord> fit;
  if (!all.ok()) return fit;
  for (const v1::ContributionRecord& c : *all) {
    // A FIT_EVALUATE vector (one session per round) is the round's fit; it is recorded
    // once per part: its record under its first key stands for it.
    const bool fit_stage = c.stage() == v1::STAGE_FIT || c.stage() == v1::STAGE_FIT_EVALUATE;
    const bool first_part = c.part_keys().empty() || c.key() == c.part_keys(0);
    if (fit_stage && first_part && c.round() == round) fit.push_back(c);
  }
  return fit;
}

// The answer `store` recorded for `step` of `session`.
absl::StatusOr<v1::StepAnswer> StoredAnswer(client::SiteStore& store, const std::string& session,
                                            v1::SecAggRound step) {
  absl::StatusOr<v1::SiteSessionRecord> record = store.GetSession(session);
  if (!record.ok()) return record.status();
  for (const v1::StepAnswer& a : record->answers()) {
    if (a.step() == static_cast<uint32_t>(step)) return a;
  }
  return absl::NotFoundError(absl::StrCat(session, " has no answer to step ", step));
}

class E2eSiteStoreTest : public FederationTest {
 protected:
  static v1::TaskSpec Spec(uint32_t rounds) {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    spec->set_rounds(rounds);
    spec->set_min_clients(3);
    spec->set_round_deadline_seconds(60);
    // Long enough for a site's restart on a loaded machine; steps close as soon as every
    // site has answered.
    spec->mutable_secure_aggregation()->set_step_deadline_seconds(30);
    return *spec;
  }

  // Restarts `name`'s daemon (tessera-client, no fault) on its damaged store and checks
  // that it stops at once with an error that names the store and `damaged` (the damaged
  // file) and says to restore the store from a backup, without ever saying Hello to the
  // coordinator. A daemon that connects instead fails the test at once and is stopped.
  void ExpectRefusesDamagedStore(const std::string& name, const std::string& damaged) {
    Site& s = site(name);
    const std::string store_dir = s.dir + "/store";
    const size_t log_before = s.process->Log().size();
    const int hellos_before =
        Count(coordinator()->Log(), absl::StrCat("event=client_hello client=", name, " "));

    const absl::Time started = absl::Now();
    ASSERT_OK(StartClient(name));
    ASSERT_OK(WaitFor(
        absl::StrCat(name, " to exit (or connect)"),
        [&] {
          return !s.process->Running() ||
                 s.process->Log().find("event=connected", log_before) != std::string::npos;
        },
        absl::Seconds(20)));
    const absl::Duration took = absl::Now() - started;
    if (s.process->Running()) {
      ADD_FAILURE() << name << " opened its damaged store (" << damaged
                    << ") and connected to the coordinator:\n"
                    << s.process->Log().substr(log_before);
      ASSERT_OK(StopClient(name));
      return;
    }
    ASSERT_OK_AND_ASSIGN(ExitStatus how, s.process->Wait(absl::Seconds(1)));
    std::fprintf(stderr, "%s with %s damaged exited after %s: %s\n", name.c_str(), damaged.c_str(),
                 absl::FormatDuration(took).c_str(), how.ToString().c_str());
    const std::string said = s.process->Log().substr(log_before);
    EXPECT_TRUE(how.exited && how.code != 0) << how.ToString() << "\n" << said;
    // tessera-client prints the status message; site_store.cc's DataLoss adds the advice.
    EXPECT_THAT(said, HasSubstr(absl::StrCat("tessera-client: site store ", store_dir, ": ")));
    EXPECT_THAT(said, HasSubstr(std::filesystem::path(damaged).filename().string()));
    EXPECT_THAT(said, HasSubstr("restore it from a backup"));
    EXPECT_THAT(said, HasSubstr("do not delete it"));
    EXPECT_THAT(said, Not(HasSubstr("event=client_started")));
    EXPECT_THAT(said, Not(HasSubstr("event=connected")));

    // The coordinator never heard from it. (Its client list's last_seen_unix_ms is no
    // witness: a long-poll PullWork of the daemon's previous life returns up to
    // long_poll_seconds after that life ended and updates it then.)
    EXPECT_EQ(Count(coordinator()->Log(), absl::StrCat("event=client_hello client=", name, " ")),
              hellos_before);
    EXPECT_TRUE(coordinator()->Running());

    // The store was not deleted, nor replaced by an empty one: its records are still in its
    // log or its tables. (A log cut at a record boundary is refused after RocksDB's
    // recovery has moved the log's records into tables: the same records, other files.)
    uint64_t records_bytes = 0;
    for (const auto& [name, size] : StoreFiles(store_dir)) {
      if (name.ends_with(".sst") || name.ends_with(".log")) records_bytes += size;
    }
    EXPECT_GT(records_bytes, 0u);
    EXPECT_TRUE(std::filesystem::exists(store_dir + "/CURRENT"));
  }

  // What `store_dir` (a killed daemon's store) held between "recorded" and "sent" for
  // `session`'s masked input, read from a copy (opening the store itself would recover its
  // log before the daemon does): the contribution recorded into `*recorded`.
  void ExpectRecordedBeforeSent(const std::string& store_dir, const std::string& session,
                                v1::ContributionRecord* recorded) {
    const std::string copy = temp().File("store-at-kill");
    // Its files only: the killed daemon's control socket (store/control.sock) stays behind.
    std::filesystem::create_directory(copy);
    for (const auto& entry : std::filesystem::directory_iterator(store_dir)) {
      if (entry.is_regular_file()) std::filesystem::copy(entry.path(), copy);
    }
    ASSERT_EQ(::chmod(copy.c_str(), 0700), 0);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::SiteStore> store, client::OpenSiteStore(copy));
    std::vector<v1::ContributionRecord> fit = FitContributions(*store, 1);
    ASSERT_EQ(fit.size(), 1u) << "the masked input must be recorded before it is sent";
    *recorded = fit[0];
    EXPECT_EQ(recorded->session(), session);
    ASSERT_OK_AND_ASSIGN(v1::StepAnswer answer,
                         StoredAnswer(*store, session, v1::SECAGG_MASKED_INPUT));
    // Before the next step the record keeps the masked input itself, and its digest.
    EXPECT_EQ(crypto::ToHex(answer.sent_sha256()), crypto::ToHex(recorded->sent_sha256()));
    EXPECT_EQ(crypto::ToHex(recorded->sent_sha256()),
              crypto::ToHex(crypto::HashMessage(answer.answer())));
  }
};

// A site SIGKILLs itself after its store recorded its FIT masked input and before the
// input left (TESSERA_TEST_KILL_BEFORE_SEND). Restarted without the fault before the step's
// deadline, it answers the redelivered request with the recorded message — sent once, by
// the second life — and the session completes with all three sites. Its store holds
// exactly one FIT contribution for the round: the one recorded before the kill, for the
// message it sent.
TEST_F(E2eSiteStoreTest, SiteKilledBetweenRecordedAndSentSendsItsMaskedInputOnce) {
  const std::string victim = "hospital-b";
  const std::string session = "task-1/r1/fit/a1";
  const std::string work = session + "/s2";  // masked_input
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  for (const std::string& name : Sites()) {
    ASSERT_OK(StartClient(
        name, "",
        name == victim ? std::map<std::string, std::string>{{kKillBeforeSend, "fit/masked_input"}}
                       : std::map<std::string, std::string>{}));
  }
  for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec(2)));
  ASSERT_EQ(task_id, "task-1");

  Site& b = site(victim);
  ASSERT_OK_AND_ASSIGN(ExitStatus how, b.process->Wait(absl::Seconds(90)));
  ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString() << "\n" << b.process->LogTail();
  const std::string first_life = b.process->Log();
  EXPECT_THAT(first_life, HasSubstr("event=test_fault_kill before=fit/masked_input"));
  EXPECT_EQ(Count(first_life, absl::StrCat("step=masked_input work=", work, "\n")), 1)
      << first_life;
  EXPECT_EQ(Count(first_life, absl::StrCat("event=work_answered work=", work, " ")), 0);
  // The session waits for it: nothing committed yet.
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse during, GetTask(task_id));
  EXPECT_EQ(during.task().state(), v1::TASK_RUNNING);
  EXPECT_EQ(during.task().last_committed_round(), 0);

  v1::ContributionRecord recorded;
  ASSERT_NO_FATAL_FAILURE(ExpectRecordedBeforeSent(b.dir + "/store", session, &recorded));

  ASSERT_OK(StartClient(victim));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  ASSERT_OK(StopCoordinator());

  // The second life sent the recorded masked input, once, and the coordinator took it.
  const std::string second_life = b.process->Log().substr(first_life.size());
  EXPECT_EQ(Count(second_life, absl::StrCat("event=work_answered work=", work, " ")), 1)
      << second_life;
  EXPECT_THAT(second_life,
              HasSubstr(absl::StrCat("event=work_answered work=", work, " step=masked_input")));
  EXPECT_THAT(second_life, Not(HasSubstr("event=work_declined")));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<coordinator::Store> coordinator_store, OpenStore());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::RoundRecord> rounds, coordinator_store->ListRounds(task_id));
  ASSERT_EQ(rounds.size(), 3u);
  for (const v1::RoundRecord& r : rounds) {
    SCOPED_TRACE(absl::StrCat("round ", r.round()));
    EXPECT_THAT(r.fit_participants(), ElementsAreArray(Sites()));
    EXPECT_EQ(r.attempts(), 1u);
    EXPECT_THAT(r.drops(), IsEmpty());
  }

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::SiteStore> store,
                       client::OpenSiteStore(b.dir + "/store"));
  std::vector<v1::ContributionRecord> fit = FitContributions(*store, 1);
  ASSERT_EQ(fit.size(), 1u);
  // The record written before the kill, unchanged: nothing was computed again.
  EXPECT_EQ(crypto::ToHex(fit[0].key()), crypto::ToHex(recorded.key()));
  EXPECT_EQ(fit[0].session(), session);
  EXPECT_EQ(crypto::ToHex(fit[0].sent_sha256()), crypto::ToHex(recorded.sent_sha256()));
  EXPECT_EQ(fit[0].recorded_unix_ms(), recorded.recorded_unix_ms());
  ASSERT_OK_AND_ASSIGN(v1::SiteSessionRecord record, store->GetSession(session));
  EXPECT_EQ(record.state(), v1::SITE_SESSION_COMPLETED);
  EXPECT_TRUE(record.machine().empty());
  ASSERT_OK_AND_ASSIGN(v1::StepAnswer answer,
                       StoredAnswer(*store, session, v1::SECAGG_MASKED_INPUT));
  // Past the masked input the record keeps its digest, not its words.
  EXPECT_EQ(crypto::ToHex(fit[0].sent_sha256()), crypto::ToHex(answer.sent_sha256()));
  EXPECT_TRUE(answer.answer().secagg().masked_input().masked_input().empty());
  // One per round in all.
  EXPECT_EQ(FitContributions(*store, 2).size(), 1u);
}

// A flipped byte in the newest table file of a stopped site's store.
TEST_F(E2eSiteStoreTest, DamagedTableFileStopsTheDaemonBeforeHello) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(Spec(1)));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished, absl::Seconds(90)));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  ASSERT_OK(StopClient("hospital-a"));
  // A site's store flushes its memtables only as they fill: the records may all be in the
  // write-ahead log. An open's recovery moves them into a table file.
  { ASSERT_OK(client::OpenSiteStore(site("hospital-a").dir + "/store").status()); }

  const std::vector<std::string> tables = NumberedFiles(site("hospital-a").dir + "/store", "sst");
  ASSERT_FALSE(tables.empty());
  const std::string& newest = tables.back();
  const uint64_t size = FileSize(newest);
  ASSERT_GT(size, 64u) << newest;
  ASSERT_NO_FATAL_FAILURE(FlipBytes(newest, size / 2, 4));
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesDamagedStore("hospital-a", newest));
}

// A session's record, with its secrets, is deleted an hour after its last deadline
// (client/secure_sessions.h) even when no work comes any more: a site whose coordinator
// went away mid-session must not keep the session's keys and shares for good. Records
// written before the daemon starts (two past their retention: an open session with its
// snapshot, a completed one; one within it); no coordinator listens at the address.
TEST_F(E2eSiteStoreTest, SessionsPastTheirRetentionAreDeletedWhileNoCoordinatorAnswers) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  Site& a = site("hospital-a");
  a.store_dir = a.dir + "/store";
  const int64_t past = absl::ToUnixMillis(absl::Now() - absl::Minutes(1));
  const int64_t later = absl::ToUnixMillis(absl::Now() + absl::Hours(1));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::SiteStore> store,
                         client::OpenSiteStore(a.store_dir));
    for (const auto& [label, state, expires] :
         {std::tuple{"task-1/r1/fit/a1", v1::SITE_SESSION_OPEN, past},
          std::tuple{"task-1/r2/fit/a1", v1::SITE_SESSION_COMPLETED, past},
          std::tuple{"task-1/r3/fit/a1", v1::SITE_SESSION_OPEN, later}}) {
      v1::SiteSessionRecord record;
      record.set_session(label);
      record.set_task_id("task-1");
      record.set_state(state);
      if (state == v1::SITE_SESSION_OPEN) record.set_machine(std::string(64, '\x5a'));
      record.set_expires_unix_ms(expires);
      ASSERT_OK(store->PutSession(record, nullptr));
    }
  }

  // Port 1 on loopback: nothing listens, every connection is refused.
  ASSERT_OK(StartClient("hospital-a", "127.0.0.1:1"));
  ASSERT_OK(WaitFor(
      "hospital-a to forget the two sessions past their retention",
      [&] { return Count(a.process->Log(), "event=secagg_session_forgotten") >= 2; },
      absl::Seconds(30)));
  EXPECT_THAT(a.process->Log(), HasSubstr("event=coordinator_unreachable"));
  ASSERT_OK(StopClient("hospital-a"));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<client::SiteStore> store,
                       client::OpenSiteStore(a.store_dir));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::SiteSessionRecord> kept, store->ListSessions());
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].session(), "task-1/r3/fit/a1");
  EXPECT_THAT(store->GetSession("task-1/r1/fit/a1"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(v1::SiteSessionRecord open, store->GetSession("task-1/r3/fit/a1"));
  EXPECT_EQ(open.machine(), std::string(64, '\x5a'));
}

// The sites' logs hold records only between a write and the next flush (when the
// memtables fill): a site killed in a session (after recording its masked input) leaves
// them there. The kill comes in the first EVALUATE session, as it did when every
// session's end flushed the store (site store format version 1).
class E2eSiteStoreLogTest : public E2eSiteStoreTest {
 protected:
  // Runs a task in which hospital-a SIGKILLs itself after recording its answer to `step`
  // of its first EVALUATE session, before sending it; returns its newest write-ahead log
  // file that holds records.
  void KillSiteInSession(const std::string& step, std::string* wal) {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK(StartCoordinator());
    ASSERT_OK(StartClient("hospital-a", "", {{kKillBeforeSend, "evaluate/" + step}}));
    ASSERT_OK(StartClient("hospital-b"));
    ASSERT_OK(StartClient("hospital-c"));
    for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
    ASSERT_OK(SubmitTask(Spec(1)).status());
    ASSERT_OK_AND_ASSIGN(ExitStatus how, site("hospital-a").process->Wait(absl::Seconds(90)));
    ASSERT_TRUE(how.KilledBy(SIGKILL)) << how.ToString();
    const std::vector<std::string> logs = NumberedFiles(site("hospital-a").dir + "/store", "log");
    ASSERT_FALSE(logs.empty());
    // A flush begun just before the kill leaves a new, empty log after the one it drains.
    *wal = logs.back();
    for (auto it = logs.rbegin(); it != logs.rend() && FileSize(*wal) <= 64; ++it) *wal = *it;
    ASSERT_GT(FileSize(*wal), 64u) << *wal << ": the session's records should be in the log";
  }
};

// A flipped byte in the write-ahead log: the site's records of the session it was in.
TEST_F(E2eSiteStoreLogTest, DamagedWriteAheadLogStopsTheDaemonBeforeHello) {
  std::string wal;
  ASSERT_NO_FATAL_FAILURE(KillSiteInSession("masked_input", &wal));
  ASSERT_NO_FATAL_FAILURE(FlipBytes(wal, FileSize(wal) / 2, 1));
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesDamagedStore("hospital-a", wal));
}

// The write-ahead log cut in the middle of its last record, as a torn write or a truncated
// copy leaves it: absolute-consistency recovery refuses it rather than dropping the tail.
TEST_F(E2eSiteStoreLogTest, TruncatedWriteAheadLogStopsTheDaemonBeforeHello) {
  std::string wal;
  ASSERT_NO_FATAL_FAILURE(KillSiteInSession("masked_input", &wal));
  const uint64_t cut = FileSize(wal) - 10;
  ASSERT_LT(LogRecordStarts(wal).back(), cut) << "the cut must fall inside the last record";
  ASSERT_EQ(::truncate(wal.c_str(), static_cast<off_t>(cut)), 0) << wal;
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesDamagedStore("hospital-a", wal));
}

// The site recorded its FIT masked input (with its contribution record) and was killed
// before sending it. Its write-ahead log is then cut at the start of that record: a record
// boundary, what a file system that loses a file's tail, or a partial copy of the store,
// leaves. RocksDB's recovery cannot tell such a log from one whose later writes never
// happened; the store's high-water mark (CONTRIBUTED_UP_TO, beside the log, synced after
// every write that records a masked input) can, and the store refuses to open rather than
// forget a contribution it may have sent.
TEST_F(E2eSiteStoreLogTest, WriteAheadLogCutAtARecordBoundaryStopsTheDaemon) {
  std::string wal;
  ASSERT_NO_FATAL_FAILURE(KillSiteInSession("masked_input", &wal));
  // The newest record is the masked input's: the write the kill came right after.
  const std::vector<uint64_t> starts = LogRecordStarts(wal);
  ASSERT_FALSE(starts.empty()) << wal;
  ASSERT_EQ(::truncate(wal.c_str(), static_cast<off_t>(starts.back())), 0) << wal;
  ASSERT_NO_FATAL_FAILURE(ExpectRefusesDamagedStore("hospital-a", "CONTRIBUTED_UP_TO"));
  // Opened directly, the store says the same.
  EXPECT_THAT(client::OpenSiteStore(site("hospital-a").dir + "/store").status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("recorded a masked input")));
}

}  // namespace
}  // namespace tessera::e2e
