// Fuzz target: the site's RocksDB store (client/site_store.cc and
// client/internal/rocksdb_site_store*.cc) reading records it did not write. Each input is
// a list of raw records (raw_store.h) written into a copy of a fresh store; the store is
// then opened read-only (the same checks of every record as the daemon's open, without the
// scrub), everything it holds is listed and the egress ledger's chain is verified. A damaged record
// is DATA_LOSS naming its family and key, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "client/ledger.h"
#include "client/site_store.h"
#include "proto/site_approval.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "tests/fuzz/raw_store.h"
#include "tests/fuzz/secagg_world.h"

namespace {

using namespace tessera;

const std::string& Template() {
  static const std::string* const dir = [] {
    auto* path = new std::string(fuzz::ScratchDir() + "/template");
    if (!client::OpenSiteStore(*path).ok()) std::abort();
    return path;
  }();
  return *dir;
}

void ReadEverything(client::SiteStore& store) {
  if (auto contributions = store.ListContributions(); contributions.ok()) {
    for (const v1::ContributionRecord& c : *contributions) (void)store.GetContribution(c.key());
  }
  if (auto sessions = store.ListSessions(); sessions.ok()) {
    for (const v1::SiteSessionRecord& s : *sessions) (void)store.GetSession(s.session());
  }
  (void)store.LastLedgerEntry();
  auto entries = store.ListLedgerEntries();
  auto checkpoints = store.ListLedgerCheckpoints();
  if (entries.ok() && checkpoints.ok()) {
    (void)client::VerifyLedger(*entries, *checkpoints, fuzz::World().ca_cert_pem);
  }
  if (auto approvals = store.ListApprovals(); approvals.ok()) {
    for (const v1::ApprovalRecord& a : *approvals)
      (void)store.GetApproval(a.task_id(), a.spec_hash());
  }
  (void)store.ListBudgetCharges();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> families = fuzz::Families(Template());
  const std::string work = fuzz::ScratchDir() + "/work";
  fuzz::FuzzInput in(data, size);
  const std::vector<fuzz::RawRecord> records = fuzz::ReadRecords(in, families);
  fuzz::CopyStore(Template(), work);
  if (!fuzz::WriteRecords(work, records).ok()) std::abort();
  auto store = client::OpenSiteStoreReadOnly(work);
  if (store.ok()) ReadEverything(**store);
  return 0;
}
