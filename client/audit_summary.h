// What left the site, per task and per secure-aggregation session (v1.AuditSummary,
// proto/site_ledger.proto), built from the egress ledger (client/ledger.h) and the session
// records of the site store. Used by `tessera-client audit show` and by the round
// provenance check (client/provenance_check.h). Names, counts, sizes, digests and the
// public consistency signatures only: no share or payload is copied.
//
// Thread safety: as the store's (reads only).
#ifndef TESSERA_CLIENT_AUDIT_SUMMARY_H_
#define TESSERA_CLIENT_AUDIT_SUMMARY_H_

#include <string>

#include "absl/status/statusor.h"
#include "client/site_store.h"
#include "proto/site_ledger.pb.h"

namespace tessera::client {

// Summarises the ledger of `store`: per task (in the order first sent; only `task_filter`
// unless it is empty) and per session label, the messages and bytes, the last step, and
// from the session record (if still stored) its state, cohort, survivors, dropped, the
// consistency signature sent and the SHA-256 of the request carrying the masked input.
// `site_id` (may be empty) is added to the cohort and survivors, which the record's
// answers name only as peers. Errors: the store's (a missing session record is not one).
absl::StatusOr<v1::AuditSummary> SummariseEgress(SiteStore& store, const std::string& task_filter,
                                                 const std::string& site_id);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_AUDIT_SUMMARY_H_
