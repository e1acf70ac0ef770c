#include "coordinator/internal/round_records.h"

#include "absl/strings/str_cat.h"
#include "secagg/provenance.h"

namespace tessera::coordinator::internal {

v1::Metric MakeMetric(const std::string& name, double value) {
  v1::Metric m;
  m.set_name(name);
  m.set_value(value);
  return m;
}

std::vector<v1::Metric> AnalyticsMetrics(const proto::QueryRelease& q) {
  std::vector<v1::Metric> out;
  if (q.main) {
    out = {MakeMetric(q.column + ".count", q.main->count),
           MakeMetric(q.column + ".sum", q.main->sum), MakeMetric(q.column + ".mean", q.main->mean),
           MakeMetric(q.column + ".variance", q.main->variance)};
  }
  for (size_t i = 0; i < q.bins.size() && i + 1 < q.edges.size(); ++i) {
    if (!q.bins[i]) continue;
    out.push_back(MakeMetric(absl::StrCat(q.column, ".bin[", q.edges[i], ",", q.edges[i + 1],
                                          i + 2 == q.edges.size() ? "]" : ")"),
                             *q.bins[i]));
  }
  if (q.below) out.push_back(MakeMetric(q.column + ".below", *q.below));
  if (q.above) out.push_back(MakeMetric(q.column + ".above", *q.above));
  out.push_back(MakeMetric(q.column + ".suppressed_cells", q.suppressed_cells));
  return out;
}

void SetProvenance(const google::protobuf::RepeatedPtrField<v1::SessionProvenance>& sessions,
                   v1::RoundRecord* record) {
  v1::RoundProvenance* p = record->mutable_provenance();
  p->set_version(secagg::kProvenanceVersion);
  p->set_task_id(record->task_id());
  p->set_round(record->round());
  p->set_model_hash(record->model_hash());
  p->set_committed_unix_ms(record->committed_unix_ms());
  *p->mutable_sessions() = sessions;
  p->set_statistics_from(record->statistics_from());
}

}  // namespace tessera::coordinator::internal
