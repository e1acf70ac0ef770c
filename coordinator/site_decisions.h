// The sites' decisions on a task (v1::SiteDecision in the task record), as the coordinator
// hears them in answers to the first step of the task's sessions:
//   - Decline AWAITING_APPROVAL   -> SITE_AWAITING_APPROVAL (the task waits for it);
//   - an accepted advertisement   -> SITE_APPROVED;
//   - Decline REJECTED_BY_SITE    -> SITE_REJECTED (the task fails: RejectionReason);
//   - Decline SITE_BUDGET_EXHAUSTED -> SITE_BUDGET_EXHAUSTED (left out of the task);
//   - Decline POLICY_REFUSED      -> SITE_POLICY_REFUSED (still invited: a policy reload at
//     the site may change its answer).
// Other answers say nothing about a decision and change nothing here.
//
// Reasons come from the sites (their staff's words for a rejection): they are cut to 300
// bytes and every control character is replaced, so that nothing a site types can forge
// lines or move the cursor of the operator's terminal.
//
// Pure functions; thread-safe.
#ifndef TESSERA_COORDINATOR_SITE_DECISIONS_H_
#define TESSERA_COORDINATOR_SITE_DECISIONS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/federation.pb.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {

// Decisions heard in one session, by client id.
using SiteDecisions = std::map<std::string, v1::SiteDecision>;

// The decision a decline states, with its cleaned reason; nullopt for other reasons.
std::optional<v1::SiteDecision> DecisionOf(const std::string& client_id, const v1::Decline& d);

// `reason` cut to 300 bytes with control characters (and bytes >= 0x7f that do not form
// UTF-8) replaced by '?'.
std::string CleanReason(const std::string& reason);

// Folds `heard` into task->site_decisions (kept sorted by client id): a new site is added, a
// changed state or reason replaces the old one (since = `now_unix_ms`), an unchanged one only
// has updated_unix_ms moved. True if a state or reason changed (the record should be
// written then).
bool MergeDecisions(const SiteDecisions& heard, int64_t now_unix_ms, v1::TaskRecord* task);

// Sites left out of the task: rejected it, or out of budget for it.
std::set<std::string> ExcludedSites(const v1::TaskRecord& task);

// Sites whose last decision is SITE_AWAITING_APPROVAL, sorted.
std::vector<std::string> SitesAwaitingApproval(const v1::TaskRecord& task);

// "site-b rejected the task: <reason>" for each site that rejected the task, joined by
// "; "; empty when none did.
std::string RejectionReason(const v1::TaskRecord& task);

// "site-b rejected the task: <reason>" / "site-b refused the task: its privacy budget is
// exhausted: <reason>", one per excluded site, joined by "; ".
std::string ExclusionReasons(const v1::TaskRecord& task);

// Whether a session's decisions hold one that makes its failure not count as an attempt
// (a site awaiting approval, rejecting or out of budget).
bool AnyDeciding(const SiteDecisions& decisions);
bool AnyAwaiting(const SiteDecisions& decisions);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SITE_DECISIONS_H_
