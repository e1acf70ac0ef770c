#include "coordinator/site_answers.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/site_decisions.h"
#include "proto/labels.h"

namespace tessera::coordinator {
namespace {

// "NO_ANSWER" for SECAGG_DROP_NO_ANSWER.
std::string DropName(v1::SecAggDropReason reason) {
  std::string name = v1::SecAggDropReason_Name(reason);
  return name.rfind("SECAGG_DROP_", 0) == 0 ? name.substr(12) : name;
}

// Whether two answers of one site say the same (for "every attempt").
bool SameFailure(const v1::SiteAnswer& a, const v1::SiteAnswer& b) {
  return a.kind() == b.kind() && a.decline_reason() == b.decline_reason() &&
         a.drop_reason() == b.drop_reason() && a.step() == b.step();
}

bool Failed(const v1::SiteAnswer& a) {
  return a.kind() != v1::SITE_ANSWER_CONTRIBUTED && a.kind() != v1::SITE_ANSWER_NO_SUM &&
         a.kind() != v1::SITE_ANSWER_PENDING;
}

}  // namespace

std::vector<v1::SiteAnswer> SiteAnswersOf(const SessionFacts& facts) {
  std::vector<std::string> invited = facts.invited;
  std::sort(invited.begin(), invited.end());
  invited.erase(std::unique(invited.begin(), invited.end()), invited.end());
  const std::set<std::string> survivors(facts.survivors.begin(), facts.survivors.end());
  std::map<std::string, const SessionFacts::Dropped*> dropped;
  for (const SessionFacts::Dropped& d : facts.drops) dropped[d.client_id] = &d;
  std::vector<v1::SiteAnswer> out;
  for (const std::string& id : invited) {
    v1::SiteAnswer a;
    a.set_client_id(id);
    auto declined = facts.declines.find(id);
    auto drop = dropped.find(id);
    if (facts.completed && survivors.contains(id)) {
      a.set_kind(v1::SITE_ANSWER_CONTRIBUTED);
    } else if (declined != facts.declines.end()) {
      a.set_kind(v1::SITE_ANSWER_DECLINED);
      a.set_step(declined->second.step);
      a.set_decline_reason(declined->second.decline.reason());
      a.set_detail(CleanReason(declined->second.decline.detail()));
    } else if (drop != dropped.end()) {
      const SessionFacts::Dropped& d = *drop->second;
      a.set_step(d.step);
      if (d.reason == v1::SECAGG_DROP_NO_ANSWER && d.step == v1::SECAGG_ADVERTISE_KEYS) {
        a.set_kind(facts.fetched_first.contains(id) ? v1::SITE_ANSWER_NO_ANSWER
                                                    : v1::SITE_ANSWER_NOT_CONNECTED);
      } else {
        a.set_kind(v1::SITE_ANSWER_DROPPED);
        a.set_drop_reason(d.reason);
        a.set_detail(CleanReason(d.detail));
      }
    } else if (facts.running) {
      a.set_kind(v1::SITE_ANSWER_PENDING);
      a.set_step(facts.step);
      if (!facts.pending.contains(id)) {
        a.set_detail("answered this step");
      } else if (facts.step != v1::SECAGG_ADVERTISE_KEYS) {
        a.set_detail("has not answered this step yet");
      } else {
        a.set_detail(facts.fetched_first.contains(id) ? "computing its contribution"
                                                      : "has not fetched the work yet");
      }
    } else {
      a.set_kind(v1::SITE_ANSWER_NO_SUM);
    }
    out.push_back(std::move(a));
  }
  return out;
}

void KeepAttempt(const v1::StageAttempt& attempt,
                 google::protobuf::RepeatedPtrField<v1::StageAttempt>* attempts) {
  for (v1::StageAttempt& kept : *attempts) {
    if (kept.session() != attempt.session()) continue;
    std::map<std::string, v1::SiteAnswer> before;
    for (const v1::SiteAnswer& a : kept.sites()) before[a.client_id()] = a;
    kept = attempt;
    for (v1::SiteAnswer& a : *kept.mutable_sites()) {
      auto old = before.find(a.client_id());
      if (old != before.end() && old->second.kind() == v1::SITE_ANSWER_DECLINED &&
          a.kind() == v1::SITE_ANSWER_DROPPED &&
          a.drop_reason() == v1::SECAGG_DROP_CLIENT_ABORTED && a.step() == old->second.step()) {
        a = old->second;
      }
    }
    return;
  }
  *attempts->Add() = attempt;
  if (attempts->size() > kMaxAttemptsKept) {
    attempts->DeleteSubrange(0, attempts->size() - kMaxAttemptsKept);
  }
}

std::string DescribeAnswer(const v1::SiteAnswer& a) {
  const std::string& id = a.client_id();
  const std::string detail = a.detail().empty() ? "" : absl::StrCat(": ", a.detail());
  switch (a.kind()) {
    case v1::SITE_ANSWER_CONTRIBUTED:
      return absl::StrCat(id, " contributed");
    case v1::SITE_ANSWER_DECLINED:
      return absl::StrCat(id, " declined ", v1::Decline::Reason_Name(a.decline_reason()), detail);
    case v1::SITE_ANSWER_DROPPED:
      return absl::StrCat(id, " was dropped at ", proto::StepLabel(a.step()), ": ",
                          DropName(a.drop_reason()), detail);
    case v1::SITE_ANSWER_NOT_CONNECTED:
      return absl::StrCat(id, " was not connected (never fetched the work)");
    case v1::SITE_ANSWER_NO_ANSWER:
      return absl::StrCat(id, " did not answer in time");
    case v1::SITE_ANSWER_NO_SUM:
      return absl::StrCat(id, " answered (no sum)");
    case v1::SITE_ANSWER_PENDING:
      return absl::StrCat(id, " pending at ", proto::StepLabel(a.step()), detail);
    default:
      return absl::StrCat(id, " (unknown)");
  }
}

std::string FailureCause(const google::protobuf::RepeatedPtrField<v1::StageAttempt>& attempts) {
  std::vector<const v1::StageAttempt*> ended;
  for (const v1::StageAttempt& a : attempts) {
    if (a.ended_unix_ms() != 0) ended.push_back(&a);
  }
  if (ended.empty()) return "";
  const v1::StageAttempt& last = *ended.back();
  std::vector<std::string> parts;
  for (const v1::SiteAnswer& a : last.sites()) {
    if (!Failed(a)) continue;
    bool every = ended.size() > 1;
    for (const v1::StageAttempt* other : ended) {
      bool same = false;
      for (const v1::SiteAnswer& b : other->sites()) {
        if (b.client_id() == a.client_id()) same = SameFailure(a, b);
      }
      every = every && same;
    }
    parts.push_back(absl::StrCat(DescribeAnswer(a), every ? " (every attempt)" : ""));
  }
  if (!last.outcome().empty()) parts.push_back(absl::StrCat("last session: ", last.outcome()));
  return absl::StrJoin(parts, "; ");
}

v1::TaskWaiting MakeWaiting(const std::string& dataset_id, uint32_t needed, uint32_t have,
                            const std::vector<std::string>& not_connected, size_t contributed,
                            size_t excluded, const std::set<std::string>& known_datasets,
                            const std::vector<std::string>& quarantined,
                            const std::vector<std::string>& disabled) {
  v1::TaskWaiting w;
  w.set_dataset_id(dataset_id);
  w.set_needed(needed);
  w.set_have(have);
  *w.mutable_not_connected() = {not_connected.begin(), not_connected.end()};
  *w.mutable_quarantined() = {quarantined.begin(), quarantined.end()};
  *w.mutable_disabled() = {disabled.begin(), disabled.end()};
  std::string message = absl::StrCat("waiting for ", needed, " sites holding dataset ", dataset_id,
                                     " (have ", have, ")");
  if (!not_connected.empty()) {
    absl::StrAppend(&message, "; known but not connected: ", absl::StrJoin(not_connected, ", "));
  }
  if (!quarantined.empty()) {
    absl::StrAppend(&message, "; quarantined: ", absl::StrJoin(quarantined, ", "),
                    " (named by honest sites; 'tessera clients release ID' lets one back in)");
  }
  if (!disabled.empty()) {
    absl::StrAppend(&message, "; disabled by an operator: ", absl::StrJoin(disabled, ", "),
                    " ('tessera clients enable ID')");
  }
  if (contributed > 0) {
    absl::StrAppend(&message, "; ", contributed, " already contributed to this stage");
  }
  if (excluded > 0) absl::StrAppend(&message, "; ", excluded, " left out (see the decisions)");
  if (have == 0 && not_connected.empty() && contributed == 0 && excluded == 0 &&
      quarantined.empty() && disabled.empty()) {
    absl::StrAppend(&message, "; no known site announces dataset ", dataset_id);
    std::set<std::string> others = known_datasets;
    others.erase(dataset_id);
    if (!others.empty()) {
      absl::StrAppend(&message, " (known sites announce: ", absl::StrJoin(others, ", "), ")");
    }
  }
  w.set_message(std::move(message));
  return w;
}

bool SameWaiting(const v1::TaskWaiting& a, const v1::TaskWaiting& b) {
  return a.message() == b.message() && a.needed() == b.needed() && a.have() == b.have();
}

}  // namespace tessera::coordinator
