// Pieces of a committed round's record shared by the task runner's files: a metric, an
// analytics answer as metrics, and the round's provenance. Pure functions.
#ifndef TESSERA_COORDINATOR_INTERNAL_ROUND_RECORDS_H_
#define TESSERA_COORDINATOR_INTERNAL_ROUND_RECORDS_H_

#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/analytics.h"
#include "proto/provenance.pb.h"
#include "proto/state.pb.h"

namespace tessera::coordinator::internal {

v1::Metric MakeMetric(const std::string& name, double value);

// An analytics answer as round metrics, released cells only: "<column>.count", ".sum",
// ".mean", ".variance", and for a histogram ".bin[<lo>,<hi>)" per bin with ".below" and
// ".above"; always "<column>.suppressed_cells". A suppressed cell has no metric at all.
std::vector<v1::Metric> AnalyticsMetrics(const proto::QueryRelease& q);

// The round's provenance, from the record's task, round, model hash and commit time and the
// sessions whose sums it used; set last, once the record has them.
void SetProvenance(const google::protobuf::RepeatedPtrField<v1::SessionProvenance>& sessions,
                   v1::RoundRecord* record);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_ROUND_RECORDS_H_
