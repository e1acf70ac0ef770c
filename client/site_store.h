// The site's own store: what left this institution, kept by its tessera-client daemon in
// its data_dir so that it outlives restarts, crashes and reinstalls of the binary.
//
// Records (proto/site_state.proto; the egress ledger's in proto/site_ledger.proto, at the
// end of the interface):
//   contributions  one per masked input the site sent, keyed by its 32-byte contribution
//                  key. Never removed: they are how the site refuses to send a second
//                  masked input for the same key in another session.
//   sessions       one per secure-aggregation session the site takes part in, keyed by
//                  the session label: the state machine's snapshot (SECRET: private keys,
//                  mask seed, shares, input) and every answer given, so that a restarted
//                  daemon answers a repeated request with the stored answer and continues
//                  the same session.
// and, added after format version 1, each part's own (a store created before gains the
// family at its first writable open; a read-only open reads it as empty):
//   budget         (proto/site_budget.proto) one charge per differentially private
//                  release the site contributed to, keyed by dataset id, a 0 byte and the
//                  contribution key; written with the contribution, never removed.
// The caller writes a record before the message it records leaves the site; a write that
// returned OK is on disk (synced) and survives a crash of the process or the machine.
//
// Thread safety: implementations are thread-safe. Writes are serialised; reads never block
// on one another.
//
// Errors: NOT_FOUND for a missing record; INVALID_ARGUMENT for a malformed argument;
// ALREADY_EXISTS for a contribution key owned by another session; DATA_LOSS for anything
// stored that is damaged; UNAVAILABLE for conditions a retry or an operator may clear
// (disk full, contention); INTERNAL for other storage failures. Messages name the
// operation and the record (keys in hex), never a record's content.
//
// ---- The on-disk store (OpenSiteStore)
//
// A RocksDB database, one column family per kind (contributions, sessions, meta, ledger,
// ledger_checkpoints), every write synced. `meta` holds the store's format version; a store written
// by a newer version of tessera-client is refused (FAILED_PRECONDITION) rather than misread.
//
// Never silently forget what left. Opening checks everything before the store is used:
// RocksDB's paranoid checks; write-ahead-log recovery in absolute-consistency mode (the
// default point-in-time mode silently drops a damaged log tail, and with it records of
// messages that did leave); the checksum of every block of every table file and the whole-
// file checksum of every table file written by this store; and every record of every
// family parsed and checked against its key. Any failure is DATA_LOSS naming the
// directory and what is wrong (the file, or the family and key in hex). Such a store must
// be restored from a backup, never deleted: an empty store would let the site send again
// what it already sent. One consequence, stated plainly: absolute consistency cannot tell
// a damaged log tail from a torn one, so a machine or process crash in the middle of a
// write (before that write returned, hence before anything it records was sent) may also
// make the next open fail with DATA_LOSS ("truncated record body" / "truncated header").
// A process kill between writes, however abrupt, never does.
// A log cut cleanly at a record boundary (a file system that lost a file's tail, a partial
// copy of the store) looks to RocksDB like a log whose later writes never happened. So after
// every write that records a masked input the store also syncs, beside RocksDB's files, a
// high-water mark (CONTRIBUTED_UP_TO: that write's sequence number); an open whose log ends
// before the mark — or an empty store put in place of the old one, the mark left behind —
// is DATA_LOSS too.
//
// Access. The store holds session secrets: its directory is created with mode 0700, and
// an existing directory that group or others may read, write or enter, or that belongs to
// another user, is refused (FAILED_PRECONDITION naming the path and the mode, with the
// `chmod 700` to fix it). The files inside are RocksDB's (mode 0644 under the usual umask,
// protected by the directory). One process at a time: a second process (or a second open
// in this one) gets FAILED_PRECONDITION naming the directory.
//
// Secrets on disk. A session's snapshot is written at every step, so several versions of
// it sit in RocksDB's files: the write-ahead log, and table files once flushed. None is
// ever written in plaintext: each is sealed (AES-256-GCM) under a key of the session's
// own, which lives in one slot of the file SESSION_KEYS beside RocksDB's, written and
// synced before the first snapshot sealed under it. Whenever a session's secrets are
// dropped, the store scrubs: it overwrites with zeros (and syncs) the key of every session
// that no longer has a snapshot, after which every version sealed under it is noise,
// wherever RocksDB keeps it. DeleteSession and ScrubNow scrub before they return, and so
// does every open (which covers a crash between a write that dropped secrets and its
// scrub; the open also flushes and compacts the families that a version 1 store kept
// plaintext snapshots in) and, if one is still due, the store's destruction. PutSession
// replacing a record that held a snapshot with one whose `machine` is empty (a session
// that ended) leaves the scrub to the store's background thread, off the answer's path.
// That thread starts a scrub at once, but at most one a second: sessions that end
// meanwhile share the next scrub. So an ended session's snapshots become unreadable within
// a second and some milliseconds of its last answer.
// What this guarantees: once a scrub returned OK, SESSION_KEYS no longer holds the key of
// a session dropped before it started, and no file of the store ever held a snapshot in
// plaintext. What it does not: overwriting a file in place need not overwrite the disk
// blocks that held it (a copy-on-write filesystem, its snapshots, the filesystem's
// journal, backups and an SSD's remapped flash pages may keep the old key until they are
// reused); nor is the process's memory wiped. Put data_dir on an encrypted volume to
// protect those, and treat backups of the store as secret: an open session's key and its
// snapshots are both in the directory, readable by anyone who can read it. (The
// in-memory store keeps nothing on disk.)
#ifndef TESSERA_CLIENT_SITE_STORE_H_
#define TESSERA_CLIENT_SITE_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::v1 {  // proto/site_state.proto, proto/site_budget.proto
class BudgetCharge;
class ContributionRecord;
class SiteSessionRecord;
class LedgerEntry;       // proto/site_ledger.proto
class LedgerCheckpoint;  // proto/site_ledger.proto
class ApprovalRecord;    // proto/site_approval.proto
}  // namespace tessera::v1

namespace tessera::client {

// The egress ledger's records written with a session record (SiteStore::
// PutSessionWithLedger): the entry of the message that carries the answer the record
// holds, the checkpoint due after it, and the entry of the message the daemon sends next
// (its next PullWork: EgressLedger::WriteNextAhead), which follows `entry` in sequence.
// Borrowed; null: none.
struct LedgerRecords {
  const v1::LedgerEntry* entry = nullptr;
  const v1::LedgerCheckpoint* checkpoint = nullptr;
  const v1::LedgerEntry* next = nullptr;
};

class SiteStore {
 public:
  virtual ~SiteStore() = default;

  // The contribution recorded under `key`. NOT_FOUND if none.
  virtual absl::StatusOr<v1::ContributionRecord> GetContribution(const std::string& key) = 0;

  // Every contribution, sorted by key (bytewise).
  virtual absl::StatusOr<std::vector<v1::ContributionRecord>> ListContributions() = 0;

  // The record of the session labelled `session`. NOT_FOUND if none.
  virtual absl::StatusOr<v1::SiteSessionRecord> GetSession(const std::string& session) = 0;
  // GetSession without the session's secrets: `machine` and `machine_input` are empty, and
  // nothing secret is read or opened. For a caller that holds the session's state machine
  // in memory already (a step of a running session).
  virtual absl::StatusOr<v1::SiteSessionRecord> GetSessionWithoutSecrets(
      const std::string& session) = 0;

  // Every session record, sorted by label (bytewise), without the sessions' secrets
  // (`machine` and `machine_input` empty, as GetSessionWithoutSecrets): a list is for
  // counting, expiring and showing sessions; a session's secrets are read one session at a
  // time, by GetSession.
  virtual absl::StatusOr<std::vector<v1::SiteSessionRecord>> ListSessions() = 0;

  // One atomic, synced write: `session` (replacing the record with that label) and, when
  // `contribution` is non-null, the contribution under its key. OK means both are on disk.
  //
  // A contribution with part keys (ContributionRecord.part_keys) is recorded under each
  // of them (RecordsPerKey). ALREADY_EXISTS, writing nothing, if a contribution with that
  // key, or any of them, is recorded for another session (the same session may rewrite its
  // own). INVALID_ARGUMENT, writing
  // nothing, if session.session() is empty, or, with a contribution, if its key is not
  // 32 bytes, its session is not session.session() or session.contribution_key() is not
  // its key. On a storage error (UNAVAILABLE, INTERNAL, DATA_LOSS) the write may or may
  // not have reached the disk: send nothing it records; reopening the store shows which.
  //
  // If the write drops secrets (the stored record had a `machine` snapshot and `session`
  // has none), the store's background thread scrubs them (above) within about a second; a
  // failed scrub is logged and retried a second later, at destruction and at the next open. The
  // status reports the write only.
  virtual absl::Status PutSession(const v1::SiteSessionRecord& session,
                                  const v1::ContributionRecord* contribution) = 0;

  // Removes the record of the session labelled `session` and scrubs its secrets from the
  // store's files (above); OK if there is no such record. The scrub runs in either case,
  // so when it fails (UNAVAILABLE or INTERNAL, saying so) a retry completes it.
  // Contributions are never removed.
  virtual absl::Status DeleteSession(const std::string& session) = 0;

  // Scrubs the dropped secrets of every session from the store's files (above) before it
  // returns. UNAVAILABLE or INTERNAL if it fails (a retry completes it).
  virtual absl::Status ScrubNow() = 0;

  // ---- The site's privacy budget (family `budget`, proto/site_budget.proto; the account
  // itself: client/site_budget.h). Charges are never removed.

  // Every budget charge, sorted by key (dataset id, a 0 byte, contribution key).
  virtual absl::StatusOr<std::vector<v1::BudgetCharge>> ListBudgetCharges() = 0;

  // PutSession(session, &contribution) and, in the same atomic synced write, `charge`: the
  // budget of the contribution's dataset pays for the release its masked input takes part
  // in. Errors as PutSession's, writing nothing, and INVALID_ARGUMENT, writing nothing,
  // unless charge.contribution_key() and charge.dataset_id() are the contribution's, its
  // session is session.session() and its noise_multiplier is finite and > 0. The same
  // session rewriting its contribution rewrites its charge (one charge per key).
  virtual absl::Status PutSessionCharged(const v1::SiteSessionRecord& session,
                                         const v1::ContributionRecord& contribution,
                                         const v1::BudgetCharge& charge) = 0;
  // PutSession(session, contribution) — or, with `charge`, PutSessionCharged(session,
  // *contribution, *charge) — and, in the same atomic synced write, `ledger`'s entry and
  // checkpoint (client/ledger.h makes them: EgressLedger::RecordWith): a site's answer and
  // the ledger entry of the message that carries it reach the disk together, with one sync.
  // Errors as those calls' and as AppendLedgerEntry's and PutLedgerCheckpoint's (the
  // checkpoint may be over the entry written with it), writing nothing; INVALID_ARGUMENT,
  // writing nothing, for a charge without a contribution or a checkpoint without an entry.
  virtual absl::Status PutSessionWithLedger(const v1::SiteSessionRecord& session,
                                            const v1::ContributionRecord* contribution,
                                            const v1::BudgetCharge* charge,
                                            const LedgerRecords& ledger) = 0;

  // ---- The egress ledger (client/ledger.h; families `ledger` and `ledger_checkpoints`,
  // keyed by the 8-byte big-endian sequence number). The store keeps the records and
  // their order; the chain and the signatures are client/ledger.h's to make and check.

  // Appends `entry` in one synced write. FAILED_PRECONDITION, writing nothing, unless
  // entry.sequence() is one more than the last entry's (1 on an empty ledger);
  // INVALID_ARGUMENT, writing nothing, unless sent_sha256 and prev_hash have 32 bytes.
  virtual absl::Status AppendLedgerEntry(const v1::LedgerEntry& entry) = 0;

  // The entry with the highest sequence. NOT_FOUND if the ledger is empty.
  virtual absl::StatusOr<v1::LedgerEntry> LastLedgerEntry() = 0;

  // Every entry, by sequence.
  virtual absl::StatusOr<std::vector<v1::LedgerEntry>> ListLedgerEntries() = 0;

  // Stores `checkpoint` (synced), replacing one with the same sequence. INVALID_ARGUMENT,
  // writing nothing, unless its sequence is that of a stored entry and head_hash has 32
  // bytes.
  virtual absl::Status PutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint) = 0;

  // Every checkpoint, by sequence.
  virtual absl::StatusOr<std::vector<v1::LedgerCheckpoint>> ListLedgerCheckpoints() = 0;
  // ---- Approvals (proto/site_approval.proto; client/approvals.h keeps the queue). One
  // record per (task id, spec hash); a decision, once recorded, is final.

  // The record of `task_id` with the 32-byte `spec_hash`. NOT_FOUND if none.
  virtual absl::StatusOr<v1::ApprovalRecord> GetApproval(const std::string& task_id,
                                                         const std::string& spec_hash) = 0;

  // Every record, sorted by task id, then spec hash (bytewise).
  virtual absl::StatusOr<std::vector<v1::ApprovalRecord>> ListApprovals() = 0;

  // Writes `record` (synced), replacing the record of its task id and spec hash.
  // INVALID_ARGUMENT, writing nothing, if the task id is empty or holds a 0 byte, the spec
  // hash is not 32 bytes, or a decision is not APPROVED or REJECTED, or a rejection has no
  // reason. FAILED_PRECONDITION, writing nothing, if the stored record has a decision and
  // `record` is not that same record (decisions are final).
  virtual absl::Status PutApproval(const v1::ApprovalRecord& record) = 0;
};

// Opens the store in `directory`, creating the directory (mode 0700, missing parents too)
// and the store if needed, checks all of it and scrubs (above). FAILED_PRECONDITION if the
// directory's mode or owner is unsafe, if the store is open in another process (or already
// in this one), or if it was written by a newer format version; DATA_LOSS if anything
// stored is damaged (see above); UNAVAILABLE or INTERNAL if the disk fails it, the scrub
// included. The messages name the directory.
absl::StatusOr<std::unique_ptr<SiteStore>> OpenSiteStore(const std::string& directory);

// Opens the store in `directory` read-only, while its daemon may be running: for the
// site's commands that only look (`tessera-client privacy`, `audit ...`, `tasks pending`).
// The store shows the records as they were on disk at the open, the write-ahead log
// included (a record the daemon was writing at that moment may be missing); it does not
// follow later writes. Every write (PutSession, DeleteSession, ScrubNow) fails with
// FAILED_PRECONDITION. It checks what OpenSiteStore checks and writes nothing (no scrub,
// no format version, no high-water mark, no RocksDB info log). NOT_FOUND if the directory
// or the store does not exist; FAILED_PRECONDITION if the directory's mode or owner is
// unsafe or the store has a newer format; DATA_LOSS if anything is damaged; UNAVAILABLE or
// INTERNAL if the open keeps failing (the daemon's compactions delete files: it is tried a
// few times). Thread-safe like the writable store.
absl::StatusOr<std::unique_ptr<SiteStore>> OpenSiteStoreReadOnly(const std::string& directory);

// A fresh, empty, in-memory store with the same semantics (the simulator, unit tests).
std::unique_ptr<SiteStore> NewMemorySiteStore();

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SITE_STORE_H_
