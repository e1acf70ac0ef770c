// How each stage's contribution vector (proto/contribution_layout.h) is encoded into the
// 32-bit words secure aggregation sums (secagg/vector_codec.h), for `num_invited` clients.
// The coordinator puts the encoding in the session setup and every site derives it again
// from the spec itself and refuses a setup whose encoding differs, so the coordinator
// cannot choose an encoding that makes a site's values saturate or tell anything.
//
//   STATISTICS  one WIDE segment, 24 fractional bits, 4 limbs (exact-enough sums and sums
//               of squares of any realistic feature)
//   FIT         BOUNDED weight in [0, 1], then BOUNDED weighted deltas in [-clip, clip]
//   EVALUATE    WIDE segments, 16 fractional bits, 3 limbs, except the ranges that count
//               rows (proto::EvaluationCountRanges: AUC histograms, survival grids), which
//               are integers and go as WIDE segments with 0 fractional bits and 2 limbs
//               (exact, a third fewer words); with evaluation noise one WIDE segment, 16
//               fractional bits, 3 limbs (noised counts are real numbers)
//   FIT_EVALUATE  FIT's segments, then EVALUATE's (one session per round: the vector is
//               the FIT vector followed by the EVALUATE vector of the same model)
//   ANALYTICS   one WIDE segment, 40 fractional bits, 4 limbs (integer columns sum exactly,
//               decimals to ~1e-12 relative)
//   GLM         the same: one WIDE segment, 40 fractional bits, 4 limbs, of
//               proto::GlmContributionLength values (with site fixed effects the number of
//               coefficients depends on the invited sites, every site of the cohort)
// with the most bits per word that cannot overflow for that many clients (WIDE words one
// bit less than BOUNDED ones: their top limb is signed and the others unsigned).
//
// Pure functions; thread-safe.
#ifndef TESSERA_SECAGG_STAGE_ENCODING_H_
#define TESSERA_SECAGG_STAGE_ENCODING_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "proto/evaluation.h"
#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"
#include "proto/task.pb.h"

namespace tessera::secagg {

// The encoding of `stage`'s vector for `spec` (with defaults applied) and `num_invited`
// clients: the vector length from the proto layouts (STATISTICS: StatisticsLength of the
// features plus the label when proto::StatisticsIncludeLabel; FIT: proto::NumParameters;
// EVALUATE: proto::MakeEvaluationLayout; FIT_EVALUATE: both; ANALYTICS: proto::AnalyticsLength),
// the clip bound from spec.secure_aggregation().clip(). The result passes ValidateEncoding for
// `num_invited` parties. INVALID_ARGUMENT for a stage without a secure-aggregation vector,
// no invited clients, a clip that is not positive and finite, or a spec the layouts refuse
// (or whose vector is empty).
absl::StatusOr<v1::SecAggEncoding> StageEncoding(const v1::TaskSpec& spec, v1::Stage stage,
                                                 uint32_t num_invited);

// The encodings StageEncoding returns, from the vector's size: the number of columns pooled
// (features, plus the label when pooled), of model parameters, the evaluation layout, and
// the number of analytics values.
// `present_counts`: the imputed columns' counts that follow the statistics
// (proto::ImputationCountLength, proto::PoolImputations).
v1::SecAggEncoding StatisticsEncoding(size_t num_columns, uint32_t num_invited,
                                      size_t present_counts = 0);
v1::SecAggEncoding FitEncoding(size_t num_parameters, double clip, uint32_t num_invited);
// `noised`: the task noises its evaluations (proto::EvaluationNoiseOn).
v1::SecAggEncoding EvaluateEncoding(const proto::EvaluationLayout& layout, bool noised,
                                    uint32_t num_invited);
v1::SecAggEncoding FitEvaluateEncoding(size_t num_parameters,
                                       const proto::EvaluationLayout& evaluation, double clip,
                                       uint32_t num_invited);
v1::SecAggEncoding AnalyticsEncoding(size_t length, uint32_t num_invited);

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_STAGE_ENCODING_H_
