// Builds v1.AuditSummary from the ledger and the session records (client/audit_summary.h).
#include "client/audit_summary.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "crypto/hash.h"
#include "proto/labels.h"
#include "proto/secagg.pb.h"
#include "proto/site_state.pb.h"

namespace tessera::client {
namespace {

// The cohort, survivors, dropped and the consistency signature, from the answers the
// session record keeps (only what left the site; no share is copied).
void FromSessionRecord(const v1::SiteSessionRecord& record, const std::string& site_id,
                       v1::AuditSession* out) {
  out->set_state(v1::SiteSessionState_Name(record.state()));
  std::set<std::string> cohort;
  std::set<std::string> survivors;
  std::set<std::string> dropped;
  for (const v1::StepAnswer& answer : record.answers()) {
    if (!answer.answer().has_secagg()) continue;
    const v1::SecAggClientMessage& m = answer.answer().secagg();
    if (m.has_share_keys()) {
      if (!site_id.empty()) cohort.insert(site_id);
      for (const v1::EncryptedShare& s : m.share_keys().shares()) {
        cohort.insert(s.sender());
        cohort.insert(s.receiver());
      }
    } else if (m.has_masked_input()) {
      out->set_masked_input_request_sha256(answer.sent_sha256().empty()
                                               ? crypto::HashMessage(answer.answer())
                                               : answer.sent_sha256());
    } else if (m.has_consistency()) {
      out->set_consistency_signature(m.consistency().signature());
    } else if (m.has_unmasking()) {
      if (!site_id.empty()) survivors.insert(site_id);
      for (const v1::UnmaskingShare& s : m.unmasking().shares()) {
        (s.kind() == v1::UnmaskingShare::MASK_KEY ? dropped : survivors).insert(s.owner());
      }
    }
  }
  for (const std::string& id : cohort) out->add_cohort(id);
  for (const std::string& id : survivors) out->add_survivors(id);
  for (const std::string& id : dropped) out->add_dropped(id);
}

}  // namespace

absl::StatusOr<v1::AuditSummary> SummariseEgress(SiteStore& store, const std::string& task_filter,
                                                 const std::string& site_id) {
  ASSIGN_OR_RETURN(std::vector<v1::LedgerEntry> entries, store.ListLedgerEntries());
  v1::AuditSummary summary;
  summary.set_entries(entries.size());
  std::map<std::string, int> task_index;
  std::map<std::pair<int, std::string>, int> session_index;
  for (const v1::LedgerEntry& e : entries) {
    if (e.task_id().empty()) {
      summary.set_connection_messages(summary.connection_messages() + 1);
      summary.set_connection_bytes(summary.connection_bytes() + e.byte_count());
      continue;
    }
    if (!task_filter.empty() && e.task_id() != task_filter) continue;
    auto [t, new_task] = task_index.emplace(e.task_id(), summary.tasks_size());
    if (new_task) summary.add_tasks()->set_task_id(e.task_id());
    v1::AuditTask* task = summary.mutable_tasks(t->second);
    task->set_messages(task->messages() + 1);
    task->set_bytes(task->bytes() + e.byte_count());
    const std::string stage = proto::StageLabel(e.stage());
    if (std::find(task->stages().begin(), task->stages().end(), stage) == task->stages().end()) {
      task->add_stages(stage);
    }
    auto [s, new_session] =
        session_index.emplace(std::make_pair(t->second, e.session()), task->sessions_size());
    if (new_session) {
      v1::AuditSession* session = task->add_sessions();
      session->set_session(e.session());
      session->set_round(e.round());
      session->set_stage(e.stage());
    }
    v1::AuditSession* session = task->mutable_sessions(s->second);
    session->set_messages(session->messages() + 1);
    session->set_bytes(session->bytes() + e.byte_count());
    session->set_last_step(std::max(session->last_step(), e.step()));
    session->set_declined(session->declined() || e.declined());
    if (e.step() == v1::SECAGG_MASKED_INPUT && !e.declined()) session->set_sent_masked_input(true);
  }
  for (v1::AuditTask& task : *summary.mutable_tasks()) {
    for (v1::AuditSession& session : *task.mutable_sessions()) {
      auto record = store.GetSession(session.session());
      if (record.ok()) {
        FromSessionRecord(*record, site_id, &session);
      } else if (!absl::IsNotFound(record.status())) {
        return record.status();
      }
    }
  }
  return summary;
}

}  // namespace tessera::client
