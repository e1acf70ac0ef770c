// The round provenance against the site's own ledger (client/provenance_check.h).
#include "client/provenance_check.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::client {
namespace {

using Outcome = v1::ProvenanceSessionCheck;

bool SentMaskedInput(const v1::AuditSession& s) {
  return s.sent_masked_input() || !s.masked_input_request_sha256().empty();
}

// The site's own sessions, by label.
std::map<std::string, const v1::AuditSession*> SessionsOf(const v1::AuditSummary& summary) {
  std::map<std::string, const v1::AuditSession*> sessions;
  for (const v1::AuditTask& task : summary.tasks()) {
    for (const v1::AuditSession& s : task.sessions()) sessions.emplace(s.session(), &s);
  }
  return sessions;
}

void Set(v1::ProvenanceSessionCheck* out, v1::ProvenanceSessionCheck::Outcome outcome,
         std::string detail) {
  out->set_outcome(outcome);
  out->set_detail(std::move(detail));
}

// One session of the record; `mine` is the site's own summary of it (null if none).
void CheckSession(const v1::SessionProvenance& session, const std::string& site,
                  const v1::AuditSession* mine, v1::ProvenanceSessionCheck* out) {
  const std::string& label = session.session();
  out->set_session(label);
  const bool survivor =
      std::binary_search(session.survivors().begin(), session.survivors().end(), site);
  const v1::ConsistencySignature* signature = nullptr;
  for (const v1::ConsistencySignature& s : session.signatures()) {
    if (s.client_id() == site) signature = &s;
  }
  const bool sent = mine != nullptr && SentMaskedInput(*mine);
  const bool signed_by_site = mine != nullptr && !mine->consistency_signature().empty();
  if (!sent && !signed_by_site) {
    if (survivor || signature != nullptr) {
      Set(out, Outcome::MISMATCH,
          absl::StrCat("the coordinator lists ", site, " among the ",
                       survivor ? "survivors" : "signers", " of ", label,
                       ", but this site's ledger has no masked input in that session"));
    } else {
      Set(out, Outcome::OK, absl::StrCat(site, " took no part and is not listed"));
    }
    return;
  }
  if (!survivor) {
    if (signed_by_site || signature != nullptr) {
      Set(out, Outcome::MISMATCH,
          absl::StrCat(site, " signed the survivor set of ", label,
                       ", but the coordinator does not list it among the survivors"));
    } else {
      Set(out, Outcome::NOTE,
          absl::StrCat(site, " sent a masked input in ", label,
                       " but is not a survivor and never signed: its input is not in this sum"));
    }
    return;
  }
  if (signed_by_site) {
    if (signature == nullptr) {
      Set(out, Outcome::NOTE,
          absl::StrCat(site, " is a survivor of ", label,
                       "; the record holds no signature by it (it may have arrived late)"));
    } else if (signature->signature() != mine->consistency_signature()) {
      Set(out, Outcome::MISMATCH,
          absl::StrCat("the signature the coordinator holds for ", site, " in ", label,
                       " is not the one this site sent"));
    } else {
      Set(out, Outcome::OK,
          absl::StrCat(site, " is a survivor; its signature is the one this site sent"));
    }
    return;
  }
  if (signature == nullptr) {
    Set(out, Outcome::OK,
        absl::StrCat(site, " is a survivor (it sent its masked input, it did not sign)"));
  } else if (!mine->state().empty()) {
    Set(out, Outcome::MISMATCH,
        absl::StrCat("the coordinator holds a signature by ", site, " in ", label,
                     ", but this site's session record has no signature sent"));
  } else {
    Set(out, Outcome::OK,
        absl::StrCat(site,
                     " is a survivor; its session record is gone, so the signature was "
                     "not compared"));
  }
}

}  // namespace

v1::ProvenanceCheck CheckRoundProvenance(const v1::RoundProvenance& round,
                                         const std::string& site_id,
                                         const v1::AuditSummary& summary) {
  v1::ProvenanceCheck check;
  check.set_site_id(site_id);
  check.set_task_id(round.task_id());
  check.set_round(round.round());
  const std::map<std::string, const v1::AuditSession*> mine = SessionsOf(summary);
  std::set<std::string> listed;
  bool ok = true;
  for (const v1::SessionProvenance& session : round.sessions()) {
    listed.insert(session.session());
    auto it = mine.find(session.session());
    v1::ProvenanceSessionCheck* out = check.add_sessions();
    CheckSession(session, site_id, it == mine.end() ? nullptr : it->second, out);
    ok = ok && out->outcome() != Outcome::MISMATCH;
  }
  for (const v1::AuditTask& task : summary.tasks()) {
    if (task.task_id() != round.task_id()) continue;
    for (const v1::AuditSession& s : task.sessions()) {
      if (s.round() != round.round() || !SentMaskedInput(s) || listed.contains(s.session())) {
        continue;
      }
      v1::ProvenanceSessionCheck* out = check.add_sessions();
      out->set_session(s.session());
      Set(out, Outcome::NOTE,
          absl::StrCat(site_id, " sent a masked input in ", s.session(),
                       ", which the round's provenance does not list (a failed attempt?)"));
    }
  }
  check.set_ok(ok);
  return check;
}

}  // namespace tessera::client
