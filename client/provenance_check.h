// The site's check of a coordinator's round provenance (proto/provenance.proto) against
// what its own egress ledger and session records say it sent: `tessera-client audit
// provenance`. The record's signatures are checked first with the CA certificate alone
// (secagg/provenance.h VerifyRoundProvenance); this check then asks whether what the
// coordinator claims about THIS site is true.
//
// For every session of the record, with `sent` = the site's ledger has its masked input in
// that session (AuditSession.sent_masked_input or a masked-input digest from the record):
//   - the site signed the survivor set (its session record holds the consistency signature
//     it sent): the site must be a survivor, and the record's signature for the site must
//     be byte for byte the one it sent (a missing one is a NOTE: it may have arrived late);
//   - the site is a survivor or a signer but not `sent`: MISMATCH (the coordinator claims
//     an input this site has no record of sending);
//   - `sent` but neither a survivor nor a signer: NOTE (the input is not in this sum; the
//     coordinator dropped it before the consistency check);
//   - a signature in the record while the site's session record holds none (the record is
//     gone): OK with a detail saying the signature could not be compared.
// Then each session of the record's task and round in which the site sent a masked input
// but which the record does not list is a NOTE (a failed attempt, say).
//
// Pure function; thread-safe.
#ifndef TESSERA_CLIENT_PROVENANCE_CHECK_H_
#define TESSERA_CLIENT_PROVENANCE_CHECK_H_

#include <string>

#include "proto/provenance.pb.h"
#include "proto/site_ledger.pb.h"

namespace tessera::client {

// `summary` is SummariseEgress (client/audit_summary.h) of the site's store with `site_id`
// (the task filter may be the record's task). The result's `ok` is true unless a session
// is a MISMATCH (the caller verifies the record's signatures before calling).
v1::ProvenanceCheck CheckRoundProvenance(const v1::RoundProvenance& round,
                                         const std::string& site_id,
                                         const v1::AuditSummary& summary);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PROVENANCE_CHECK_H_
