#include "coordinator/site_decisions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tessera::coordinator {
namespace {

constexpr size_t kMaxReasonBytes = 300;

// Length of the well-formed UTF-8 sequence starting at s[i] (2..4), or 0.
size_t Utf8Sequence(const std::string& s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  size_t n = 0;
  if (lead >= 0xc2 && lead <= 0xdf) n = 2;
  if (lead >= 0xe0 && lead <= 0xef) n = 3;
  if (lead >= 0xf0 && lead <= 0xf4) n = 4;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // C1 control characters (U+0080..U+009F) are escapes for some terminals.
  if (lead == 0xc2 && byte(i + 1) < 0xa0) return 0;
  return n;
}

}  // namespace

std::string CleanReason(const std::string& reason) {
  std::string out;
  for (size_t i = 0; i < reason.size() && out.size() < kMaxReasonBytes;) {
    const unsigned char c = static_cast<unsigned char>(reason[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    const size_t n = c >= 0x80 ? Utf8Sequence(reason, i) : 0;
    if (n == 0 || out.size() + n > kMaxReasonBytes) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(reason, i, n);
    i += n;
  }
  return out;
}

std::optional<v1::SiteDecision> DecisionOf(const std::string& client_id, const v1::Decline& d) {
  v1::SiteDecision decision;
  decision.set_client_id(client_id);
  switch (d.reason()) {
    case v1::Decline::AWAITING_APPROVAL:
      decision.set_state(v1::SITE_AWAITING_APPROVAL);
      break;
    case v1::Decline::REJECTED_BY_SITE:
      decision.set_state(v1::SITE_REJECTED);
      break;
    case v1::Decline::SITE_BUDGET_EXHAUSTED:
      decision.set_state(v1::SITE_BUDGET_EXHAUSTED);
      break;
    case v1::Decline::POLICY_REFUSED:
      decision.set_state(v1::SITE_POLICY_REFUSED);
      break;
    default:
      return std::nullopt;
  }
  decision.set_reason(CleanReason(d.detail()));
  return decision;
}

bool MergeDecisions(const SiteDecisions& heard, int64_t now_unix_ms, v1::TaskRecord* task) {
  std::map<std::string, v1::SiteDecision> all;
  for (const v1::SiteDecision& d : task->site_decisions()) all[d.client_id()] = d;
  bool changed = false;
  for (const auto& [id, d] : heard) {
    v1::SiteDecision& kept = all[id];
    if (kept.client_id().empty() || kept.state() != d.state() || kept.reason() != d.reason()) {
      kept = d;
      kept.set_client_id(id);
      kept.set_since_unix_ms(now_unix_ms);
      changed = true;
    }
    kept.set_updated_unix_ms(now_unix_ms);
  }
  task->clear_site_decisions();
  for (auto& [id, d] : all) *task->add_site_decisions() = std::move(d);
  return changed;
}

std::set<std::string> ExcludedSites(const v1::TaskRecord& task) {
  std::set<std::string> out;
  for (const v1::SiteDecision& d : task.site_decisions()) {
    if (d.state() == v1::SITE_REJECTED || d.state() == v1::SITE_BUDGET_EXHAUSTED) {
      out.insert(d.client_id());
    }
  }
  return out;
}

std::vector<std::string> SitesAwaitingApproval(const v1::TaskRecord& task) {
  std::vector<std::string> out;
  for (const v1::SiteDecision& d : task.site_decisions()) {
    if (d.state() == v1::SITE_AWAITING_APPROVAL) out.push_back(d.client_id());
  }
  return out;
}

namespace {

// One line per site in `state`: "<site><what>[: <reason>]", joined by "; ".
std::string ReasonsOf(const v1::TaskRecord& task, v1::SiteDecisionState state,
                      const std::string& what) {
  std::vector<std::string> lines;
  for (const v1::SiteDecision& d : task.site_decisions()) {
    if (d.state() != state) continue;
    lines.push_back(absl::StrCat(d.client_id(), what, d.reason().empty() ? "" : ": ", d.reason()));
  }
  return absl::StrJoin(lines, "; ");
}

}  // namespace

std::string RejectionReason(const v1::TaskRecord& task) {
  return ReasonsOf(task, v1::SITE_REJECTED, " rejected the task");
}

std::string ExclusionReasons(const v1::TaskRecord& task) {
  const std::string rejected = RejectionReason(task);
  const std::string budget = ReasonsOf(task, v1::SITE_BUDGET_EXHAUSTED,
                                       " refused the task: its privacy budget is exhausted");
  if (rejected.empty() || budget.empty()) return absl::StrCat(rejected, budget);
  return absl::StrCat(rejected, "; ", budget);
}

bool AnyDeciding(const SiteDecisions& decisions) {
  return std::any_of(decisions.begin(), decisions.end(), [](const auto& entry) {
    const v1::SiteDecisionState s = entry.second.state();
    return s == v1::SITE_AWAITING_APPROVAL || s == v1::SITE_REJECTED ||
           s == v1::SITE_BUDGET_EXHAUSTED;
  });
}

bool AnyAwaiting(const SiteDecisions& decisions) {
  return std::any_of(decisions.begin(), decisions.end(), [](const auto& entry) {
    return entry.second.state() == v1::SITE_AWAITING_APPROVAL;
  });
}

}  // namespace tessera::coordinator
