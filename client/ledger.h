// The site's egress ledger: a hash-chained record of every message this site's daemon sent
// to the coordinator, written to the site store (client/site_store.h) before the message
// leaves, and checkpoints signed with the site's certificate key that seal the chain, so
// that the site — or anyone holding only the federation CA's certificate — can check what
// left and that nothing was changed, removed or reordered afterwards.
//
// The ledger holds sizes and SHA-256 digests of the exact bytes sent, and metadata (task,
// round, stage, session label, step): never a payload, a key, a share or a record.
// An entry records an attempt: it is on disk before the call starts, and stays if the call
// then fails (the bytes may or may not have reached the coordinator). The coordinator is
// named by its configured address and the name its certificate must carry (the channel
// refuses any other); the certificate actually presented is not known before the call.
//
// ---- Encodings (fixed, big-endian; `str` = u32 length then the bytes)
//
// Entry hash = SHA-256 of:
//   str "tessera/ledger-entry/v1", u64 sequence, i64 sent_unix_ms, str coordinator_address,
//   str coordinator_name, u32 kind, str task_id, u32 round, u32 stage, str session,
//   u32 step, u8 declined (0/1), u64 byte_count, str sent_sha256, str prev_hash
// Entry n's prev_hash is entry n-1's hash; entry 1's is 32 zero bytes.
//
// A checkpoint signs (ECDSA P-256 with the key of `certificate_pem`):
//   str "tessera/ledger-checkpoint/v1", u64 sequence, str head_hash, i64 signed_unix_ms,
//   str reason, str SHA-256(certificate_pem)
// where head_hash is the hash of entry `sequence`.
//
// A bundle (tessera-client audit export) signs:
//   str "tessera/ledger-bundle/v1", str site_id, u64 number of entries, str hash of the last
//   entry (32 zero bytes if none), u64 number of checkpoints, str SHA-256 of the
//   concatenated checkpoint signatures, i64 exported_unix_ms, str SHA-256(certificate_pem)
//
// What verification proves: entries 1..n form one chain; every checkpoint was signed by a
// certificate of the federation (valid when it signed, institution role, one site) over the
// chain's hash at its entry. Changing, removing or reordering any entry up to the last
// checkpoint is detected and named. Entries after the last checkpoint are chained but not
// yet signed: removing them from the tail is not detectable (a checkpoint is made every
// `checkpoint_every` entries, at the end of every session and when the daemon stops, so
// that tail is short). A bundle's own signature covers its whole chain.
#ifndef TESSERA_CLIENT_LEDGER_H_
#define TESSERA_CLIENT_LEDGER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/site_store.h"
#include "proto/site_ledger.pb.h"

namespace tessera::crypto {
class Signer;
}  // namespace tessera::crypto

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace tessera::v1 {  // proto/federation.proto
class WorkItem;
class PushResultRequest;
}  // namespace tessera::v1

namespace tessera::client {

// The encodings above.
std::string LedgerEntryEncoding(const v1::LedgerEntry& entry);
std::string LedgerEntryHash(const v1::LedgerEntry& entry);  // 32 bytes
std::string LedgerCheckpointEncoding(const v1::LedgerCheckpoint& checkpoint);
std::string LedgerBundleEncoding(const v1::LedgerBundle& bundle);

// What a successful verification established.
struct LedgerVerification {
  uint64_t entries = 0;
  uint64_t checkpoints = 0;
  // The highest entry a valid signature covers (a checkpoint, or a bundle's signature).
  uint64_t signed_through = 0;
  std::string head_hash;  // hash of the last entry, 32 bytes (empty without entries)
  std::string site_id;    // from the signing certificates (empty without checkpoints)
};

// Re-walks the chain and checks every checkpoint against the federation CA (`ca_cert_pem`).
// Pure: no I/O. `entries` and `checkpoints` in the order stored. Errors name the entry:
// DATA_LOSS "entry 6: ..." for a broken chain (a changed, missing or moved entry);
// UNAUTHENTICATED "checkpoint at entry 64: ..." for a signature or certificate that does
// not check; INVALID_ARGUMENT for a CA certificate that does not parse.
absl::StatusOr<LedgerVerification> VerifyLedger(absl::Span<const v1::LedgerEntry> entries,
                                                absl::Span<const v1::LedgerCheckpoint> checkpoints,
                                                const std::string& ca_cert_pem);

// VerifyLedger on the bundle's records, then its own signature and certificate (valid at
// export, institution role, the checkpoints' site). Errors as VerifyLedger's, or
// UNAUTHENTICATED "bundle: ...".
absl::StatusOr<LedgerVerification> VerifyLedgerBundle(const v1::LedgerBundle& bundle,
                                                      const std::string& ca_cert_pem);

// Every entry and checkpoint of `store`, signed at `now` by `signer` (the key of
// `certificate_pem`, the site `site_id`'s certificate).
absl::StatusOr<v1::LedgerBundle> ExportLedgerBundle(SiteStore& store, const crypto::Signer& signer,
                                                    const std::string& certificate_pem,
                                                    const std::string& site_id, absl::Time now);

// What is known about a message before it leaves (LedgerEntry fields 3..11).
struct EgressMessage {
  v1::LedgerMessageKind kind = v1::LEDGER_MESSAGE_KIND_UNSPECIFIED;
  std::string task_id;
  uint32_t round = 0;
  v1::Stage stage = v1::STAGE_UNSPECIFIED;
  std::string session;
  uint32_t step = 0;
  bool declined = false;
  // The site's last message of its session (the unmasking answer, a decline or an abort):
  // a checkpoint follows its entry.
  bool ends_session = false;
};

struct EgressLedgerOptions {
  std::string coordinator_address;
  std::string coordinator_name;
  uint32_t checkpoint_every = 64;
  // The site's certificate (PEM), whose key is the signer's.
  std::string certificate_pem;
};

// The bytes a request leaves as (client/internal/recorded_caller.h) and the ledger
// hashes: `message` serialised deterministically, which crypto::HashMessage hashes too.
// INTERNAL if it cannot be serialised (over 2 GiB).
absl::StatusOr<std::string> SentBytes(const google::protobuf::MessageLite& message);

// What the ledger records of the message that carries `answer`, the site's answer to
// `item` (Federation.PushResult).
EgressMessage PushResultMessage(const v1::WorkItem& item, const v1::PushResultRequest& answer);

// The daemon's writer. Thread-safe (one append at a time). `store` and `signer` must
// outlive it.
//
// An answer and its entry in one write. A site's answer to a secure-aggregation step is
// recorded in its session record (client/secure_sessions.h) and in this ledger before it
// leaves: RecordWith makes the entry of the message that will carry it (and the checkpoint
// due after it) and hands both to the session's store write (SiteStore::
// PutSessionWithLedger), so that the two reach the disk with one sync. When that message
// is then sent, Record finds its entry written already (same kind, metadata, size and
// SHA-256) and appends none. An entry written ahead whose message is not the next one
// recorded (the daemon stopped first, or sent something else) stays in the chain: an
// attempt that did not start, like a call that failed before its bytes left. The daemon's
// next PullWork may be written ahead with the answer likewise (WriteNextAhead).
class EgressLedger {
 public:
  // Continues the chain stored in `store` (reads its last entry).
  static absl::StatusOr<std::unique_ptr<EgressLedger>> Open(SiteStore* store,
                                                            const crypto::Signer* signer,
                                                            EgressLedgerOptions options);

  // Appends the entry for `bytes` — the exact bytes about to be sent — and, when due, a
  // checkpoint (every checkpoint_every entries; after an entry that ends a session). OK
  // means the entry is on disk: only then may the bytes leave. An error from the store is
  // returned as is (send nothing).
  absl::Status Record(const EgressMessage& message, std::string_view bytes, absl::Time now);

  // The entry of `message`, `byte_count` bytes whose SHA-256 is `sha256` (32 bytes), and the
  // checkpoint due after it (as Record's), passed to `write`, which must write them in one
  // store write with whatever they go with (SiteStore::PutSessionWithLedger). If `write`
  // returns OK the chain moves on and the next Record of that very message writes nothing;
  // otherwise nothing changes and its error is returned. Nothing else is appended meanwhile.
  absl::Status RecordWith(const EgressMessage& message, uint64_t byte_count,
                          const std::string& sha256, absl::Time now,
                          absl::FunctionRef<absl::Status(const LedgerRecords&)> write);

  // The message the daemon sends right after its next answer (its next PullWork), `bytes`
  // as they will leave: if that answer's entry is made by RecordWith, the entry of this
  // message follows it in the same write (LedgerRecords::next), so that the answer and the
  // request after it reach the disk with one sync, and Record finds it written like the
  // answer's. Not when a checkpoint would be due after it (Record writes it then, with its
  // checkpoint). Forgotten at the next Record or RecordWith, whether used or not.
  void WriteNextAhead(const EgressMessage& message, std::string_view bytes);

  // A checkpoint over the current head unless one already covers it (reason e.g. "stop").
  absl::Status Checkpoint(const std::string& reason, absl::Time now);

 private:
  EgressLedger(SiteStore* store, const crypto::Signer* signer, EgressLedgerOptions options);
  absl::Status CheckpointLocked(const std::string& reason, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The next entry of the chain for `message` (sequence, prev_hash and digest filled in).
  v1::LedgerEntry NextEntry(const EgressMessage& message, uint64_t byte_count,
                            const std::string& sha256, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a checkpoint is due after entry `sequence` of `message` (Record's rule).
  bool CheckpointDue(const EgressMessage& message, uint64_t sequence) const;
  // The checkpoint over entry `sequence` whose hash is `head_hash`, signed. `reason` as
  // CheckpointLocked's.
  absl::StatusOr<v1::LedgerCheckpoint> SignedCheckpoint(uint64_t sequence,
                                                        const std::string& head_hash,
                                                        const std::string& reason,
                                                        absl::Time now) const;

  SiteStore* const store_;
  const crypto::Signer* const signer_;
  const EgressLedgerOptions options_;
  absl::Mutex mu_;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;  // of the last entry
  std::string head_hash_ ABSL_GUARDED_BY(mu_);  // of the last entry
  uint64_t checkpointed_ ABSL_GUARDED_BY(mu_) = 0;
  // The entries RecordWith wrote last (the answer's, and the next message's), in order,
  // each until the Record that finds it; the first Record that does not match drops them.
  std::deque<v1::LedgerEntry> written_ahead_ ABSL_GUARDED_BY(mu_);
  // WriteNextAhead's message, until the next Record or RecordWith.
  struct NextMessage {
    EgressMessage message;
    uint64_t byte_count = 0;
    std::string sha256;
  };
  std::optional<NextMessage> next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_LEDGER_H_
