// Fuzz target: the site store's record decoding (client/internal/site_store_records.h) and
// the egress ledger's verification (client/ledger.h VerifyLedger) without a database, at
// libFuzzer speed; site_store keeps the whole-store path (RocksDB open, checksums, the
// high-water mark). The input is laid out as for site_store (raw_store.h), over the same
// column families, so each target's corpus seeds the other. Every record left after the
// input's puts and erases is decoded as the store decodes what it finds under that key (a
// refusal is DATA_LOSS; an accepted record, encoded again, is accepted again as the same
// record), and the ledger records that decode are verified as a chain against the fixed
// test CA, in key order, as the store lists them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/internal/site_store_records.h"
#include "client/ledger.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/raw_store.h"
#include "tests/fuzz/record_fuzz_util.h"
#include "tests/fuzz/secagg_world.h"

namespace {

using namespace tessera;
namespace records = client::internal;

// The families of a fresh site store, sorted by name (raw_store.h's Families).
const std::vector<std::string>& Families() {
  static const std::vector<std::string>* const families = new std::vector<std::string>{
      "approvals",          "budget", "contributions", "default", "ledger",
      "ledger_checkpoints", "meta",   "sessions"};
  return *families;
}

// A site-store decoder for a store called "store".
template <typename Decode>
auto DecodeChecked(Decode decode, const std::string& key, const std::string& value) {
  return fuzz::DecodeChecked(
      [&](std::string_view k, std::string_view v) { return decode("store", k, v); }, key, value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  std::vector<v1::LedgerEntry> entries;
  std::vector<v1::LedgerCheckpoint> checkpoints;
  for (const auto& [family, stored] : fuzz::Apply(fuzz::ReadRecords(in, Families()))) {
    for (const auto& [key, value] : stored) {
      if (family == "contributions") {
        (void)DecodeChecked(records::DecodeContribution, key, value);
      } else if (family == "sessions") {
        (void)DecodeChecked(records::DecodeSession, key, value);
      } else if (family == "approvals") {
        (void)DecodeChecked(records::DecodeApproval, key, value);
      } else if (family == "budget") {
        (void)DecodeChecked(records::DecodeBudgetCharge, key, value);
      } else if (family == "ledger") {
        auto entry = DecodeChecked(records::DecodeLedgerEntry, key, value);
        if (entry.ok()) entries.push_back(*std::move(entry));
      } else if (family == "ledger_checkpoints") {
        auto checkpoint = DecodeChecked(records::DecodeLedgerCheckpoint, key, value);
        if (checkpoint.ok()) checkpoints.push_back(*std::move(checkpoint));
      }
    }
  }
  if (!entries.empty() || !checkpoints.empty()) {
    (void)client::VerifyLedger(entries, checkpoints, fuzz::World().ca_cert_pem);
  }
  return 0;
}
