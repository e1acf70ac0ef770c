// What both site stores (client/site_store.h) check about the egress ledger's records and
// how they say it: the arguments of AppendLedgerEntry and PutLedgerCheckpoint, and the
// key encoding (8-byte big-endian sequence, so that key order is sequence order).
#ifndef TESSERA_CLIENT_INTERNAL_SITE_STORE_LEDGER_RULES_H_
#define TESSERA_CLIENT_INTERNAL_SITE_STORE_LEDGER_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/site_ledger.pb.h"

namespace tessera::client::internal {

// The store key of entry or checkpoint `sequence`.
std::string LedgerKey(uint64_t sequence);

// The sequence a key holds; nullopt unless it has 8 bytes.
std::optional<uint64_t> LedgerKeySequence(std::string_view key);

// AppendLedgerEntry's checks against the last stored sequence (0 for an empty ledger):
// INVALID_ARGUMENT for a digest that is not 32 bytes, FAILED_PRECONDITION for a sequence
// that is not last + 1.
absl::Status CheckAppendLedgerEntry(const v1::LedgerEntry& entry, uint64_t last);

// PutLedgerCheckpoint's checks (INVALID_ARGUMENT): `entry_exists` says whether an entry
// with the checkpoint's sequence is stored.
absl::Status CheckPutLedgerCheckpoint(const v1::LedgerCheckpoint& checkpoint, bool entry_exists);

absl::Status NoLedgerEntries();

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_SITE_STORE_LEDGER_RULES_H_
