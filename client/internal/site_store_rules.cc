#include "client/internal/site_store_rules.h"

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/internal/site_budget_records.h"
#include "common/status.h"
#include "proto/site_budget.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client::internal {

std::string Hex(std::string_view bytes) {
  return absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size()));
}

absl::Status CheckPutSession(const v1::SiteSessionRecord& session,
                             const v1::ContributionRecord* contribution) {
  if (session.session().empty()) {
    return absl::InvalidArgumentError("PutSession: the session label is empty");
  }
  if (!session.machine_input().empty() && session.machine().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("PutSession \"", session.session(),
                                                   "\": a snapshot's input without the snapshot"));
  }
  if (contribution == nullptr) return absl::OkStatus();
  const std::string what = absl::StrCat("PutSession \"", session.session(), "\": ");
  if (contribution->key().size() != kContributionKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(what, "the contribution key has ",
                                                   contribution->key().size(), " bytes, want ",
                                                   kContributionKeySize));
  }
  if (contribution->session() != session.session()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "the contribution names session \"", contribution->session(), "\""));
  }
  if (session.contribution_key() != contribution->key()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "the session's contribution_key ", Hex(session.contribution_key()),
                     " is not the contribution's key ", Hex(contribution->key())));
  }
  const auto& parts = contribution->part_keys();
  if (parts.empty()) return absl::OkStatus();
  if (parts.size() < 2 || parts[0] != contribution->key()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     "the contribution's part keys must be at least two, the first "
                     "being its key"));
  }
  if (!std::equal(parts.begin(), parts.end(), session.part_keys().begin(),
                  session.part_keys().end())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "the contribution's part keys are not the session's"));
  }
  std::set<std::string> seen;
  for (const std::string& key : parts) {
    if (key.size() != kContributionKeySize || !seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "part key ", Hex(key), " is not a distinct ", kContributionKeySize, "-byte key"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPutSessionWithLedger(const v1::SiteSessionRecord& session,
                                       const v1::ContributionRecord* contribution,
                                       const v1::BudgetCharge* charge,
                                       const LedgerRecords& ledger) {
  RETURN_IF_ERROR(CheckPutSession(session, contribution));
  if (charge != nullptr) {
    if (contribution == nullptr) {
      return absl::InvalidArgumentError("PutSessionWithLedger: a charge without a contribution");
    }
    RETURN_IF_ERROR(CheckBudgetCharge(session, *contribution, *charge));
  }
  if (ledger.entry == nullptr && ledger.checkpoint != nullptr) {
    return absl::InvalidArgumentError(
        "PutSessionWithLedger: a ledger checkpoint without its entry");
  }
  if (ledger.entry == nullptr && ledger.next != nullptr) {
    return absl::InvalidArgumentError(
        "PutSessionWithLedger: a next ledger entry without the entry it follows");
  }
  return absl::OkStatus();
}

std::vector<v1::ContributionRecord> RecordsPerKey(const v1::ContributionRecord& contribution) {
  if (contribution.part_keys().empty()) return {contribution};
  std::vector<v1::ContributionRecord> out;
  for (const std::string& key : contribution.part_keys()) {
    out.push_back(contribution);
    out.back().set_key(key);
  }
  return out;
}

absl::Status CheckContributionOwner(const v1::ContributionRecord& stored,
                                    const std::string& session) {
  if (stored.session() == session) return absl::OkStatus();
  return absl::AlreadyExistsError(
      absl::StrCat("PutSession \"", session, "\": contribution key ", Hex(stored.key()),
                   " is already recorded for session \"", stored.session(),
                   "\": this site sent a masked input for it in that session"));
}

absl::Status NoContribution(const std::string& key) {
  return absl::NotFoundError(absl::StrCat("GetContribution: no contribution under key ", Hex(key)));
}

absl::Status NoSession(const std::string& session) {
  return absl::NotFoundError(absl::StrCat("GetSession: no session \"", session, "\""));
}

}  // namespace tessera::client::internal
