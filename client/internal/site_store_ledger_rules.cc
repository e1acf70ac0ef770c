#include "client/internal/site_store_ledger_rules.h"

#include "absl/strings/str_cat.h"

namespace tessera::client::internal {
namespace {

constexpr size_t kDigestSize = 32;

}  // namespace

std::string LedgerKey(uint64_t sequence) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(sequence & 0xff);
    sequence >>= 8;
  }
  return key;
}

std::optional<uint64_t> LedgerKeySequence(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  uint64_t sequence = 0;
  for (char c : key) sequence = (sequence << 8) | static_cast<unsigned char>(c);
  return sequence;
}

absl::Status CheckAppendLedgerEntry(const v1::LedgerEntry& entry, uint64_t last) {
  if (entry.sent_sha256().size() != kDigestSize || entry.prev_hash().size() != kDigestSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AppendLedgerEntry: entry ", entry.sequence(),
                     ": sent_sha256 and prev_hash must have 32 bytes"));
  }
  if (entry.sequence() != last + 1) {
    return absl::FailedPreconditionError(absl::StrCat("AppendLedgerEntry: entry ", entry.sequence(),
                                                      " after entry ", last, " (want ", last + 1,
                                                      ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckPutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint, bool entry_exists) {
  if (checkpoint.head_hash().size() != kDigestSize) {
    return absl::InvalidArgumentError(absl::StrCat("PutLedgerCheckpoint: checkpoint ",
                                                   checkpoint.sequence(),
                                                   ": head_hash must have 32 bytes"));
  }
  if (!entry_exists) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PutLedgerCheckpoint: checkpoint ", checkpoint.sequence(), " names no stored entry"));
  }
  return absl::OkStatus();
}

absl::Status NoLedgerEntries() { return absl::NotFoundError("the egress ledger is empty"); }

}  // namespace tessera::client::internal
