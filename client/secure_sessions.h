// The site's side of secure aggregation across the steps of each session, durable in the
// site store (client/site_store.h). One SecAggClient (secagg/client.h) per open session,
// keyed by the work item's session label. The first step starts it with the vector the
// WorkProcessor computed from local data; each later step continues it.
//
// Every answer is recorded before it leaves. For each session the store holds the state
// machine's snapshot (its secrets) and every answer given, per step, with the SHA-256 of
// the request it answered:
//   - a repeated request (a redelivery, a coordinator or site restart) gets the stored
//     answer, byte for byte, and nothing is computed again; except the masked input once
//     the site has answered a later step of the session: the coordinator records a step's
//     end before it posts the next, so only a coordinator that went back (restored from an
//     old backup) asks for it then, and the record keeps only its SHA-256
//     (StepAnswer.sent_sha256): such a request is declined, sending nothing of it;
//   - a changed request for a step already answered aborts the session
//     (SECAGG_REQUEST_CHANGED): a site answers each step of a session once;
//   - a daemon restarted mid-session restores the machine from its snapshot and goes on
//     with the same keys, shares and input.
// The input words, the bulk of a snapshot until the masked input, are written once, with
// the session's first record (SiteSessionRecord.machine_input); each later snapshot names
// them by digest (SecAggClient::SnapshotWithoutInput), and a running session's steps read
// the record without its secrets: the machine held in memory is the state.
// The masked input is recorded together with its contribution key (client/
// contribution_key.h) in one synced write; if the key was already sent in another session
// the write is refused and the session aborts with ALREADY_CONTRIBUTED: a site never sends
// two masked inputs for the same contribution.
//
// The site's own privacy budget (client/site_budget.h): a session whose release is
// differentially private is checked against the budget of its dataset at the first step
// (before anything is computed) and again before its masked input leaves; past the budget
// the site declines SITE_BUDGET_EXHAUSTED (naming the rule; the numbers only in its log)
// and leaves the session. Otherwise the charge is written with the masked input's record,
// in the same synced write (SiteStore::PutSessionCharged).
//
// Before starting a session the site checks that the set-up describes its work item: task,
// round, stage, model hash, the spec hash, N and the standardisation it carries (all bound
// into the signed set-up), the encoding the site derives itself from the spec for the
// stage and the number of invited sites, and a threshold safe for that number
// (secagg::SafeThreshold, at least the site's minimum cohort) and at least the policy's
// fraction of it (policy.min_threshold_fraction: a POLICY_REFUSED decline naming the rule,
// client/policy.h). A coordinator cannot attach a foreign set-up, choose an encoding that
// makes a value overflow, or show different sites different specs or statistics in one
// session.
//
// A session's record is kept until an hour after its last step's deadline (so that a
// restarted coordinator can resume it), then deleted with its secrets (ExpireBefore: the
// daemon calls it while no work comes too). Every decline and abort carries a fixed text
// and the abort reason; nothing secret or computed from data.
// An abort whose blame is specific — a peer's share that does not authenticate or is
// malformed inside (secagg::SecAggClient::culprit()) — also names that peer
// (Decline.culprit), so that the coordinator can leave it out of later sessions.
//
// Not thread-safe: used by one work loop. `store` is borrowed and must outlive this object.
#ifndef TESSERA_CLIENT_SECURE_SESSIONS_H_
#define TESSERA_CLIENT_SECURE_SESSIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/time/time.h"
#include "crypto/secret.h"
#include "proto/config.pb.h"
#include "proto/federation.pb.h"
#include "secagg/client.h"

namespace tessera::v1 {
class BudgetCharge;
class ContributionRecord;
class SiteSessionRecord;
}  // namespace tessera::v1

namespace tessera::client {

class EgressLedger;
class SiteStore;

class SecureSessions {
 public:
  // `identity.signer` and `store` must outlive this object. `policy`: the site's local
  // policy (validated, defaults applied); its min_cohort and min_threshold_fraction bound
  // the sessions' thresholds.
  SecureSessions(secagg::ClientIdentity identity, v1::LocalPolicy policy, SiteStore* store);
  ~SecureSessions();

  // Replaces the policy (a reload): sessions started afterwards use the new one.
  void SetPolicy(v1::LocalPolicy policy) { policy_ = std::move(policy); }

  // The daemon's egress ledger over the same store (may be null, the default: the
  // simulator's sites send nothing). With it, each answer recorded here is written with
  // the ledger entry of the PushResult that will carry it, in one store write
  // (EgressLedger::RecordWith). `ledger` must outlive this object.
  void SetLedger(EgressLedger* ledger) { ledger_ = ledger; }

  // The first step, before anything is computed: the stored answer if this very request was
  // answered before; else a decline if the request is for a session the site already
  // answered with another set-up, if the set-up does not describe the item (above), or if
  // the site already sent a masked input under any of `contribution_keys` (ContributionKeys:
  // the vector is recorded under the first). nullopt: go on, compute the vector and call
  // Start.
  std::optional<v1::PushResultRequest> Precheck(const v1::WorkItem& item,
                                                std::span<const std::string> contribution_keys);

  // The first step: joins the session with `values`, this site's vector for the item's
  // stage (recorded before the answer is returned), which spends `contribution_keys`.
  v1::PushResultRequest Start(const v1::WorkItem& item, std::span<const double> values,
                              std::span<const std::string> contribution_keys, absl::Time now);

  // A later step of a session.
  v1::PushResultRequest Continue(const v1::WorkItem& item, absl::Time now);

  // Deletes (with their secrets) the records of sessions whose retention ended before
  // `now`. Runs at most once a minute.
  void ExpireBefore(absl::Time now);

  // The key of the stochastic rounding of this site's vector for a stage: the first 16 bytes
  // of SHA-256("tessera/rounding/v1", task seed, round, stage, site). Deterministic, so that
  // with the same seeds the same task gives the same model; the rounding protects nothing
  // (the masks do), and the once-only rule means no vector is ever encoded twice.
  static crypto::SecretBytes RoundingKey(uint64_t task_seed, uint32_t round, v1::Stage stage,
                                         const std::string& client_id);

 private:
  // The answer to `item`, a decline with `reason` and `detail`.
  static v1::PushResultRequest Declined(const v1::WorkItem& item, v1::Decline::Reason reason,
                                        std::string detail);
  // Records the session as aborted (secrets dropped) and returns its answer: a
  // SECURE_AGGREGATION_ABORTED decline naming `reason` and `detail`, and `culprit` (the peer
  // the state machine blames, secagg::SecAggClient::culprit(); may be empty).
  v1::PushResultRequest Abort(v1::SiteSessionRecord& record, const v1::WorkItem& item,
                              v1::SecAggClientAbort reason, const std::string& detail,
                              const std::string& culprit = "");
  // Ends the session: records it as aborted (`abort_reason`, secrets dropped) with `answer`
  // as the step's answer; a failed write is logged (the answer leaves either way: it is a
  // decline and carries nothing of the site's).
  void End(v1::SiteSessionRecord& record, const v1::WorkItem& item,
           const v1::PushResultRequest& answer, const std::string& abort_reason);
  // The site's privacy budget for one more release at `noise_multiplier` from `dataset`
  // (client/site_budget.h): nullopt if it fits, else the SITE_BUDGET_EXHAUSTED decline (or
  // COMPUTE_ERROR if the store cannot be read).
  std::optional<v1::PushResultRequest> CheckBudget(const v1::WorkItem& item,
                                                   const std::string& dataset,
                                                   const std::string& key, double noise_multiplier);
  // Records `record` (and the contribution, if any, with its budget charge when the
  // session's release is charged); the answer if that worked, else a
  // decline saying the site could not record it (nothing else leaves). `request_digest`:
  // the item's request digest when the caller has it already ("": computed here).
  v1::PushResultRequest Record(v1::SiteSessionRecord& record, const v1::WorkItem& item,
                               v1::PushResultRequest answer, bool contributes, absl::Time now,
                               std::string request_digest = "");
  // One write of `record` (with `contribution` and `charge` when not null) that records
  // `answer` to `item`: with the ledger entry of its PushResult when there is a ledger.
  // `answer_sha256`: crypto::HashMessage(answer) when already known, else empty.
  absl::Status Write(const v1::SiteSessionRecord& record,
                     const v1::ContributionRecord* contribution, const v1::BudgetCharge* charge,
                     const v1::WorkItem& item, const v1::PushResultRequest& answer, absl::Time now,
                     const std::string& answer_sha256 = "");
  // The set-up's checks against the item (see the header comment); a decline or nullopt.
  std::optional<v1::PushResultRequest> CheckSetup(const v1::WorkItem& item) const;
  // The open machine of `record` (read without its secrets): cached, or restored from the
  // snapshot and input the store holds. Null (logged) if they cannot be read or restored.
  secagg::SecAggClient* Machine(const v1::SiteSessionRecord& record);

  const secagg::ClientIdentity identity_;
  v1::LocalPolicy policy_;
  SiteStore* const store_;
  EgressLedger* ledger_ = nullptr;
  // Machines of open sessions by label, with the number of answers their state reflects.
  struct Cached {
    std::unique_ptr<secagg::SecAggClient> machine;
    int answers = 0;
  };
  std::map<std::string, Cached> machines_;
  absl::Time next_expiry_ = absl::InfinitePast();
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SECURE_SESSIONS_H_
