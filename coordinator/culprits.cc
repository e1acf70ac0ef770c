#include "coordinator/culprits.h"

#include <set>

namespace tessera::coordinator {

std::vector<Verdict> JudgeCulprits(const std::map<std::string, Accusation>& accusations) {
  std::set<std::string> named;
  for (const auto& [accuser, accusation] : accusations) {
    if (accusation.culprit != accuser) named.insert(accusation.culprit);
  }
  std::map<std::string, Verdict> verdicts;
  for (const auto& [accuser, accusation] : accusations) {
    // A named site's word counts for nothing: it may be the one lying.
    if (accusation.culprit == accuser || named.contains(accuser)) continue;
    Verdict& v = verdicts[accusation.culprit];
    if (v.named_by.empty()) {
      v.client_id = accusation.culprit;
      v.reason = accusation.reason;
    }
    v.named_by.push_back(accuser);  // sorted: the map is
  }
  std::vector<Verdict> out;
  out.reserve(verdicts.size());
  for (auto& [id, v] : verdicts) out.push_back(std::move(v));
  return out;
}

}  // namespace tessera::coordinator
