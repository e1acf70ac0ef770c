// Round provenance (proto/provenance.proto): checking, with nothing but the federation CA
// certificate, which sites' inputs make up each sum a coordinator released. Used by the
// operator's console (`tessera tasks provenance`) and by a site that checks the record
// against its own egress ledger; the coordinator makes the records
// (SecAggServer::Provenance, secagg/server.h).
//
// VerifySessionProvenance checks, in this order, and stops at the first failure:
//   1. the record is complete (a setup, a 32-byte setup digest and session id) and its
//      summary fields (task, round, stage, attempt, model hash, threshold) equal the setup's;
//   2. setup_digest is SetupDigest(setup);
//   3. the threshold is at least floor(2n/3) + 1 for the n invited sites and at most n;
//   4. the advertisements are sorted by client id without repeats, each of an invited site,
//      each certificate chains to the CA (as of `at`), names that site and has the
//      institution role, each advertisement is for this setup digest and its signature
//      verifies with the certificate's key;
//   5. session_id is SessionId(setup_digest, advertisements);
//   6. the survivors are sorted without repeats, each an advertised site, and at least
//      `threshold` of them;
//   7. the signatures are sorted by signer without repeats, each signer a survivor, each a
//      valid signature by the signer's advertised certificate over
//      ConsistencySigningInput(session_id, survivors), and at least `threshold` of them.
// VerifyRoundProvenance checks the round's version; that each session is of its task and
// round (stages not repeated); that round 0 has a STATISTICS session (or names the task it
// reused statistics from) and a later round a FIT, FIT_EVALUATE or ANALYTICS session; that
// an EVALUATE session ran on the round's model (its setup's model hash is the round's
// model_hash, so the committed checkpoint is bound by the sites' signatures; a FIT_EVALUATE
// session runs on the previous round's model, whose evaluation it carries: that round's
// record holds it too, and it must be of round + 1 with the round's model_hash); then each
// session as above,
// certificates as of the round's commit time.
//
// Errors are INVALID_ARGUMENT (a record that is incomplete or inconsistent) or
// UNAUTHENTICATED (a certificate or signature that does not verify), and the message names
// the session ("fit session task-1/r2/fit/a1"), the site when one is at fault, and the
// check: "fit session task-1/r2/fit/a1: hospital-b: the consistency signature does not
// verify over the survivor set".
//
// Pure functions; thread-safe.
#ifndef TESSERA_SECAGG_PROVENANCE_H_
#define TESSERA_SECAGG_PROVENANCE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace tessera::v1 {
class SessionProvenance;
class RoundProvenance;
}  // namespace tessera::v1

namespace tessera::secagg {

inline constexpr uint32_t kProvenanceVersion = 1;

// Checks one session's record against the CA certificate (PEM), certificates as of `at`.
absl::Status VerifySessionProvenance(const v1::SessionProvenance& session,
                                     const std::string& ca_cert_pem, absl::Time at);

// Checks a round's record: every session, certificates as of round.committed_unix_ms().
absl::Status VerifyRoundProvenance(const v1::RoundProvenance& round,
                                   const std::string& ca_cert_pem);

// "fit session task-1/r2/fit/a1": how errors name a session.
std::string SessionName(const v1::SessionProvenance& session);

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_PROVENANCE_H_
