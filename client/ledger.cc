#include "client/ledger.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "google/protobuf/message_lite.h"
#include "proto/deterministic.h"
#include "proto/federation.pb.h"

namespace tessera::client {
namespace {

constexpr size_t kHashSize = 32;

// The fixed binary encoding of ledger.h: big-endian integers, length-prefixed strings.
class Encoder {
 public:
  explicit Encoder(std::string_view tag) { Str(tag); }
  Encoder& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Encoder& U32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out_.push_back(static_cast<char>(v >> shift));
    return *this;
  }
  Encoder& U64(uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out_.push_back(static_cast<char>(v >> shift));
    return *this;
  }
  Encoder& I64(int64_t v) { return U64(static_cast<uint64_t>(v)); }
  Encoder& Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string ZeroHash() { return std::string(kHashSize, '\0'); }

absl::Status Broken(uint64_t sequence, const std::string& what) {
  return absl::DataLossError(absl::StrCat("entry ", sequence, ": ", what));
}

absl::Status BadCheckpoint(uint64_t sequence, const std::string& what) {
  return absl::UnauthenticatedError(absl::StrCat("checkpoint at entry ", sequence, ": ", what));
}

// The certificate chains to the CA at `when` and names an institution.
absl::StatusOr<crypto::CertificateInfo> CheckSigner(const std::string& certificate_pem,
                                                    const std::string& ca_cert_pem,
                                                    int64_t when_unix_ms) {
  ASSIGN_OR_RETURN(
      crypto::CertificateInfo info,
      crypto::VerifyCertificate(certificate_pem, ca_cert_pem, absl::FromUnixMillis(when_unix_ms)));
  RETURN_IF_ERROR(crypto::RequireRole(info, crypto::Role::kInstitution));
  return info;
}

absl::Status CheckCheckpoint(const v1::LedgerCheckpoint& checkpoint,
                             absl::Span<const v1::LedgerEntry> entries,
                             const std::string& ca_cert_pem, LedgerVerification* result) {
  const uint64_t at = checkpoint.sequence();
  if (at == 0 || at > entries.size()) {
    return BadCheckpoint(at, absl::StrCat("no such entry (the ledger has ", entries.size(),
                                          "): entries were removed"));
  }
  if (checkpoint.head_hash() != LedgerEntryHash(entries[at - 1])) {
    return BadCheckpoint(at, absl::StrCat("entry ", at,
                                          " is not the entry the checkpoint signed (it was "
                                          "changed or replaced)"));
  }
  auto info = CheckSigner(checkpoint.certificate_pem(), ca_cert_pem, checkpoint.signed_unix_ms());
  if (!info.ok()) return BadCheckpoint(at, std::string(info.status().message()));
  if (!result->site_id.empty() && info->node_id != result->site_id) {
    return BadCheckpoint(
        at, absl::StrCat("signed by ", info->node_id, ", earlier ones by ", result->site_id));
  }
  ASSIGN_OR_RETURN(crypto::Verifier verifier,
                   crypto::Verifier::Create(checkpoint.certificate_pem()));
  if (!verifier.Verify(LedgerCheckpointEncoding(checkpoint), checkpoint.signature()).ok()) {
    return BadCheckpoint(at, "the signature does not verify (the checkpoint was changed)");
  }
  result->site_id = info->node_id;
  result->signed_through = std::max(result->signed_through, at);
  return absl::OkStatus();
}

}  // namespace

std::string LedgerEntryEncoding(const v1::LedgerEntry& e) {
  return Encoder("tessera/ledger-entry/v1")
      .U64(e.sequence())
      .I64(e.sent_unix_ms())
      .Str(e.coordinator_address())
      .Str(e.coordinator_name())
      .U32(static_cast<uint32_t>(e.kind()))
      .Str(e.task_id())
      .U32(e.round())
      .U32(static_cast<uint32_t>(e.stage()))
      .Str(e.session())
      .U32(e.step())
      .U8(e.declined() ? 1 : 0)
      .U64(e.byte_count())
      .Str(e.sent_sha256())
      .Str(e.prev_hash())
      .Take();
}

std::string LedgerEntryHash(const v1::LedgerEntry& entry) {
  return crypto::Sha256(LedgerEntryEncoding(entry));
}

std::string LedgerCheckpointEncoding(const v1::LedgerCheckpoint& c) {
  return Encoder("tessera/ledger-checkpoint/v1")
      .U64(c.sequence())
      .Str(c.head_hash())
      .I64(c.signed_unix_ms())
      .Str(c.reason())
      .Str(crypto::Sha256(c.certificate_pem()))
      .Take();
}

std::string LedgerBundleEncoding(const v1::LedgerBundle& b) {
  std::string signatures;
  for (const v1::LedgerCheckpoint& c : b.checkpoints()) signatures += c.signature();
  const std::string head =
      b.entries().empty() ? ZeroHash() : LedgerEntryHash(*b.entries().rbegin());
  return Encoder("tessera/ledger-bundle/v1")
      .Str(b.site_id())
      .U64(static_cast<uint64_t>(b.entries_size()))
      .Str(head)
      .U64(static_cast<uint64_t>(b.checkpoints_size()))
      .Str(crypto::Sha256(signatures))
      .I64(b.exported_unix_ms())
      .Str(crypto::Sha256(b.certificate_pem()))
      .Take();
}

absl::StatusOr<LedgerVerification> VerifyLedger(absl::Span<const v1::LedgerEntry> entries,
                                                absl::Span<const v1::LedgerCheckpoint> checkpoints,
                                                const std::string& ca_cert_pem) {
  LedgerVerification result;
  std::string prev = ZeroHash();
  for (size_t i = 0; i < entries.size(); ++i) {
    const v1::LedgerEntry& e = entries[i];
    const uint64_t want = i + 1;
    if (e.sequence() != want) {
      const bool later =
          std::any_of(entries.begin() + i, entries.end(),
                      [&](const v1::LedgerEntry& x) { return x.sequence() == want; });
      return Broken(
          want, later
                    ? absl::StrCat("out of order (entry ", e.sequence(), " is stored in its place)")
                    : absl::StrCat("missing (the next entry stored is ", e.sequence(), ")"));
    }
    if (e.sent_sha256().size() != kHashSize) {
      return Broken(want, "its SHA-256 of the bytes sent is not 32 bytes");
    }
    if (e.prev_hash() != prev) {
      return Broken(want - 1, absl::StrCat("changed, moved or removed: entry ", want,
                                           " does not chain to it"));
    }
    prev = LedgerEntryHash(e);
  }
  result.entries = entries.size();
  result.head_hash = entries.empty() ? "" : prev;
  uint64_t last = 0;
  for (const v1::LedgerCheckpoint& c : checkpoints) {
    if (c.sequence() <= last) {
      return BadCheckpoint(c.sequence(), absl::StrCat("out of order (after the checkpoint at "
                                                      "entry ",
                                                      last, ")"));
    }
    RETURN_IF_ERROR(CheckCheckpoint(c, entries, ca_cert_pem, &result));
    last = c.sequence();
  }
  result.checkpoints = checkpoints.size();
  return result;
}

absl::StatusOr<LedgerVerification> VerifyLedgerBundle(const v1::LedgerBundle& bundle,
                                                      const std::string& ca_cert_pem) {
  std::vector<v1::LedgerEntry> entries(bundle.entries().begin(), bundle.entries().end());
  std::vector<v1::LedgerCheckpoint> checkpoints(bundle.checkpoints().begin(),
                                                bundle.checkpoints().end());
  ASSIGN_OR_RETURN(LedgerVerification result, VerifyLedger(entries, checkpoints, ca_cert_pem));
  auto bad = [](const std::string& what) {
    return absl::UnauthenticatedError(absl::StrCat("bundle: ", what));
  };
  auto info = CheckSigner(bundle.certificate_pem(), ca_cert_pem, bundle.exported_unix_ms());
  if (!info.ok()) return bad(std::string(info.status().message()));
  if (info->node_id != bundle.site_id() ||
      (!result.site_id.empty() && result.site_id != bundle.site_id())) {
    return bad(absl::StrCat("signed by ", info->node_id, " for site ", bundle.site_id(),
                            result.site_id.empty() ? "" : ", checkpoints by " + result.site_id));
  }
  ASSIGN_OR_RETURN(crypto::Verifier verifier, crypto::Verifier::Create(bundle.certificate_pem()));
  if (!verifier.Verify(LedgerBundleEncoding(bundle), bundle.signature()).ok()) {
    return bad(
        "the signature over its head does not verify (entries or checkpoints were added, "
        "removed or changed after export)");
  }
  result.site_id = bundle.site_id();
  result.signed_through = result.entries;
  return result;
}

absl::StatusOr<v1::LedgerBundle> ExportLedgerBundle(SiteStore& store, const crypto::Signer& signer,
                                                    const std::string& certificate_pem,
                                                    const std::string& site_id, absl::Time now) {
  v1::LedgerBundle bundle;
  bundle.set_site_id(site_id);
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> entries, store.ListLedgerEntries());
  ASSIGN_OR_RETURN(std::vector<v1::LedgerCheckpoint> checkpoints, store.ListLedgerCheckpoints());
  for (v1::LedgerEntry& e : entries) *bundle.add_entries() = std::move(e);
  for (v1::LedgerCheckpoint& c : checkpoints) *bundle.add_checkpoints() = std::move(c);
  bundle.set_certificate_pem(certificate_pem);
  bundle.set_exported_unix_ms(common::ToUnixMillis(now));
  ASSIGN_OR_RETURN(std::string signature, signer.Sign(LedgerBundleEncoding(bundle)));
  bundle.set_signature(std::move(signature));
  return bundle;
}

// ---- EgressLedger

EgressLedger::EgressLedger(SiteStore* store, const crypto::Signer* signer,
                           EgressLedgerOptions options)
    : store_(store), signer_(signer), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<EgressLedger>> EgressLedger::Open(SiteStore* store,
                                                                 const crypto::Signer* signer,
                                                                 EgressLedgerOptions options) {
  std::unique_ptr<EgressLedger> ledger(new EgressLedger(store, signer, std::move(options)));
  absl::MutexLock lock(&ledger->mu_);
  ledger->head_hash_ = ZeroHash();
  absl::StatusOr<v1::LedgerEntry> last = store->LastLedgerEntry();
  if (last.ok()) {
    ledger->sequence_ = last->sequence();
    ledger->head_hash_ = LedgerEntryHash(*last);
  } else if (!absl::IsNotFound(last.status())) {
    return last.status();
  }
  ASSIGN_OR_RETURN(std::vector<v1::LedgerCheckpoint> checkpoints, store->ListLedgerCheckpoints());
  if (!checkpoints.empty()) ledger->checkpointed_ = checkpoints.back().sequence();
  return ledger;
}

v1::LedgerEntry EgressLedger::NextEntry(const EgressMessage& message, uint64_t byte_count,
                                        const std::string& sha256, absl::Time now) const {
  v1::LedgerEntry entry;
  entry.set_sequence(sequence_ + 1);
  entry.set_sent_unix_ms(common::ToUnixMillis(now));
  entry.set_coordinator_address(options_.coordinator_address);
  entry.set_coordinator_name(options_.coordinator_name);
  entry.set_kind(message.kind);
  entry.set_task_id(message.task_id);
  entry.set_round(message.round);
  entry.set_stage(message.stage);
  entry.set_session(message.session);
  entry.set_step(message.step);
  entry.set_declined(message.declined);
  entry.set_byte_count(byte_count);
  entry.set_sent_sha256(sha256);
  entry.set_prev_hash(head_hash_);
  return entry;
}

bool EgressLedger::CheckpointDue(const EgressMessage& message, uint64_t sequence) const {
  return message.ends_session ||
         (options_.checkpoint_every > 0 && sequence % options_.checkpoint_every == 0);
}

absl::StatusOr<v1::LedgerCheckpoint> EgressLedger::SignedCheckpoint(uint64_t sequence,
                                                                    const std::string& head_hash,
                                                                    const std::string& reason,
                                                                    absl::Time now) const {
  v1::LedgerCheckpoint checkpoint;
  checkpoint.set_sequence(sequence);
  checkpoint.set_head_hash(head_hash);
  checkpoint.set_signed_unix_ms(common::ToUnixMillis(now));
  checkpoint.set_reason(reason);
  checkpoint.set_certificate_pem(options_.certificate_pem);
  ASSIGN_OR_RETURN(std::string signature, signer_->Sign(LedgerCheckpointEncoding(checkpoint)));
  checkpoint.set_signature(std::move(signature));
  return checkpoint;
}

namespace {

// Whether two entries record the same message (everything but the chain and the time).
bool SameMessage(const v1::LedgerEntry& a, const v1::LedgerEntry& b) {
  return a.kind() == b.kind() && a.task_id() == b.task_id() && a.round() == b.round() &&
         a.stage() == b.stage() && a.session() == b.session() && a.step() == b.step() &&
         a.declined() == b.declined() && a.byte_count() == b.byte_count() &&
         a.sent_sha256() == b.sent_sha256() && a.coordinator_address() == b.coordinator_address() &&
         a.coordinator_name() == b.coordinator_name();
}

}  // namespace

absl::Status EgressLedger::Record(const EgressMessage& message, std::string_view bytes,
                                  absl::Time now) {
  const std::string sha256 = crypto::Sha256(bytes);
  absl::MutexLock lock(&mu_);
  next_.reset();
  v1::LedgerEntry entry = NextEntry(message, bytes.size(), sha256, now);
  if (!written_ahead_.empty()) {
    const bool found = SameMessage(written_ahead_.front(), entry);
    written_ahead_.pop_front();
    if (found) return absl::OkStatus();
    written_ahead_.clear();  // they stay in the chain: attempts that did not start
  }
  RETURN_IF_ERROR(store_->AppendLedgerEntry(entry));
  sequence_ = entry.sequence();
  head_hash_ = LedgerEntryHash(entry);
  if (message.ends_session) return CheckpointLocked("session_end", now);
  if (CheckpointDue(message, sequence_)) return CheckpointLocked("every_n", now);
  return absl::OkStatus();
}

absl::Status EgressLedger::RecordWith(const EgressMessage& message, uint64_t byte_count,
                                      const std::string& sha256, absl::Time now,
                                      absl::FunctionRef<absl::Status(const LedgerRecords&)> write) {
  absl::MutexLock lock(&mu_);
  const std::optional<NextMessage> next = std::exchange(next_, std::nullopt);
  const v1::LedgerEntry entry = NextEntry(message, byte_count, sha256, now);
  const std::string entry_hash = LedgerEntryHash(entry);
  std::optional<v1::LedgerCheckpoint> checkpoint;
  if (CheckpointDue(message, entry.sequence())) {
    ASSIGN_OR_RETURN(checkpoint,
                     SignedCheckpoint(entry.sequence(), entry_hash,
                                      message.ends_session ? "session_end" : "every_n", now));
  }
  std::optional<v1::LedgerEntry> follows;
  if (next.has_value() && !CheckpointDue(next->message, entry.sequence() + 1)) {
    follows = NextEntry(next->message, next->byte_count, next->sha256, now);
    follows->set_sequence(entry.sequence() + 1);
    follows->set_prev_hash(entry_hash);
  }
  LedgerRecords records;
  records.entry = &entry;
  records.checkpoint = checkpoint.has_value() ? &*checkpoint : nullptr;
  records.next = follows.has_value() ? &*follows : nullptr;
  RETURN_IF_ERROR(write(records));
  sequence_ = entry.sequence();
  head_hash_ = entry_hash;
  if (checkpoint.has_value()) checkpointed_ = sequence_;
  written_ahead_.assign({entry});
  if (follows.has_value()) {
    sequence_ = follows->sequence();
    head_hash_ = LedgerEntryHash(*follows);
    written_ahead_.push_back(*std::move(follows));
  }
  return absl::OkStatus();
}

void EgressLedger::WriteNextAhead(const EgressMessage& message, std::string_view bytes) {
  NextMessage next{message, bytes.size(), crypto::Sha256(bytes)};
  absl::MutexLock lock(&mu_);
  next_ = std::move(next);
}

absl::Status EgressLedger::Checkpoint(const std::string& reason, absl::Time now) {
  absl::MutexLock lock(&mu_);
  return CheckpointLocked(reason, now);
}

absl::Status EgressLedger::CheckpointLocked(const std::string& reason, absl::Time now) {
  if (sequence_ == 0 || checkpointed_ == sequence_) return absl::OkStatus();
  ASSIGN_OR_RETURN(const v1::LedgerCheckpoint checkpoint,
                   SignedCheckpoint(sequence_, head_hash_, reason, now));
  RETURN_IF_ERROR(store_->PutLedgerCheckpoint(checkpoint));
  checkpointed_ = sequence_;
  return absl::OkStatus();
}

absl::StatusOr<std::string> SentBytes(const google::protobuf::MessageLite& message) {
  return proto::DeterministicBytes(message, "the request");
}

EgressMessage PushResultMessage(const v1::WorkItem& item, const v1::PushResultRequest& answer) {
  EgressMessage what;
  what.kind = v1::LEDGER_PUSH_RESULT;
  what.task_id = item.task_id();
  what.round = item.round();
  what.stage = item.stage();
  what.session = item.secagg_session();
  what.step = static_cast<uint32_t>(item.secagg().round());
  what.declined = answer.has_decline();
  what.ends_session = answer.has_decline() || item.secagg().round() == v1::SECAGG_UNMASKING;
  return what;
}

}  // namespace tessera::client
