#include "secagg/stage_encoding.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/quantizer.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/glm_layout.h"
#include "proto/model_layout.h"
#include "proto/preparation.h"
#include "secagg/vector_codec.h"

namespace tessera::secagg {
namespace {

// WIDE words carry one bit less than BOUNDED ones: their top limb is signed and the others
// unsigned, so a limb sum needs the headroom.
uint32_t WideBits(uint32_t num_invited) { return crypto::MaxBitsForParties(num_invited) - 1; }

v1::SecAggSegment Wide(size_t length, uint32_t fraction_bits, uint32_t limbs, uint32_t n) {
  v1::SecAggSegment s;
  s.set_kind(v1::SecAggSegment::WIDE);
  s.set_length(static_cast<uint32_t>(length));
  s.set_bits(WideBits(n));
  s.set_fraction_bits(fraction_bits);
  s.set_limbs(limbs);
  return s;
}

v1::SecAggSegment Bounded(size_t length, double bound, uint32_t n) {
  v1::SecAggSegment s;
  s.set_kind(v1::SecAggSegment::BOUNDED);
  s.set_length(static_cast<uint32_t>(length));
  s.set_bits(crypto::MaxBitsForParties(n));
  s.set_bound(bound);
  return s;
}

// The length of `stage`'s vector for `spec` and `num_invited` sites, from the proto layouts.
absl::StatusOr<size_t> VectorLength(const v1::TaskSpec& spec, v1::Stage stage,
                                    uint32_t num_invited) {
  const size_t d = static_cast<size_t>(spec.dataset().features_size());
  // An exact regression has Newton rounds only (and its statistics round).
  if (proto::IsGlmTask(spec) && stage != v1::STAGE_STATISTICS && stage != v1::STAGE_GLM) {
    return absl::InvalidArgumentError(
        absl::StrCat("an exact regression (model.glm) has no ", v1::Stage_Name(stage), " stage"));
  }
  switch (stage) {
    case v1::STAGE_GLM: {
      ASSIGN_OR_RETURN(const size_t p, proto::GlmCoefficientCount(spec, num_invited));
      return proto::GlmContributionLength(spec, p);
    }
    case v1::STAGE_STATISTICS:
      // The columns pooled; then, with IMPUTE_MEAN or IMPUTE_MODE preparation, the imputed
      // columns' present counts (proto/preparation.h): StatisticsEncoding adds them.
      return d + (proto::StatisticsIncludeLabel(spec.model()) ? 1 : 0);
    case v1::STAGE_FIT:
      return proto::NumParameters(spec.model(), d);
    case v1::STAGE_EVALUATE:
    case v1::STAGE_TEST: {
      ASSIGN_OR_RETURN(const proto::EvaluationLayout layout,
                       proto::MakeEvaluationLayout(spec.model()));
      return layout.length;
    }
    case v1::STAGE_ANALYTICS:
      return proto::AnalyticsLength(spec.analytics());
    case v1::STAGE_FIT_EVALUATE: {
      ASSIGN_OR_RETURN(const size_t fit, VectorLength(spec, v1::STAGE_FIT, num_invited));
      ASSIGN_OR_RETURN(const size_t evaluate, VectorLength(spec, v1::STAGE_EVALUATE, num_invited));
      return fit + evaluate;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("stage ", v1::Stage_Name(stage), " has no secure-aggregation vector"));
}

}  // namespace

absl::StatusOr<v1::SecAggEncoding> StageEncoding(const v1::TaskSpec& spec, v1::Stage stage,
                                                 uint32_t num_invited) {
  if (num_invited == 0) {
    return absl::InvalidArgumentError("a stage encoding needs at least one invited client");
  }
  absl::StatusOr<size_t> length = VectorLength(spec, stage, num_invited);
  if (!length.ok()) return absl::InvalidArgumentError(length.status().message());
  // At most 4 words per value (WIDE limbs) must fit a uint32 word count.
  if (*length == 0 || *length > (UINT32_MAX - 1) / 4) {
    return absl::InvalidArgumentError(absl::StrCat("the spec gives stage ", v1::Stage_Name(stage),
                                                   " an empty or oversized vector"));
  }
  v1::SecAggEncoding encoding;
  switch (stage) {
    case v1::STAGE_STATISTICS:
      encoding =
          StatisticsEncoding(*length, num_invited, proto::ImputationCountLength(spec.dataset()));
      break;
    case v1::STAGE_FIT:
    case v1::STAGE_FIT_EVALUATE: {
      const double clip = spec.secure_aggregation().clip();
      if (!std::isfinite(clip) || clip <= 0) {
        return absl::InvalidArgumentError("secure_aggregation.clip must be positive and finite");
      }
      if (stage == v1::STAGE_FIT) {
        encoding = FitEncoding(*length, clip, num_invited);
        break;
      }
      // VectorLength checked both parts. A combined vector never carries noised
      // evaluations (the sites refuse one: client/work_processor.h).
      const size_t fit = *VectorLength(spec, v1::STAGE_FIT, num_invited);
      encoding =
          FitEvaluateEncoding(fit, *proto::MakeEvaluationLayout(spec.model()), clip, num_invited);
      break;
    }
    case v1::STAGE_EVALUATE:  // VectorLength made the layout already
    case v1::STAGE_TEST:
      encoding = EvaluateEncoding(*proto::MakeEvaluationLayout(spec.model()),
                                  proto::EvaluationNoiseOn(spec), num_invited);
      break;
    default:  // ANALYTICS and GLM (VectorLength refused every other stage)
      encoding = AnalyticsEncoding(*length, num_invited);
      break;
  }
  if (absl::Status valid = ValidateEncoding(encoding, num_invited); !valid.ok()) {
    return absl::InvalidArgumentError(valid.message());
  }
  return encoding;
}

v1::SecAggEncoding StatisticsEncoding(size_t num_columns, uint32_t num_invited,
                                      size_t present_counts) {
  v1::SecAggEncoding e;
  *e.add_segments() =
      Wide(proto::StatisticsLength(num_columns) + present_counts, 24, 4, num_invited);
  return e;
}

v1::SecAggEncoding FitEncoding(size_t num_parameters, double clip, uint32_t num_invited) {
  v1::SecAggEncoding e;
  *e.add_segments() = Bounded(1, 1.0, num_invited);
  *e.add_segments() = Bounded(num_parameters, clip, num_invited);
  return e;
}

v1::SecAggEncoding EvaluateEncoding(const proto::EvaluationLayout& layout, bool noised,
                                    uint32_t num_invited) {
  v1::SecAggEncoding e;
  size_t at = 0;
  if (!noised) {
    for (const auto& [begin, end] : proto::EvaluationCountRanges(layout)) {
      if (begin > at) *e.add_segments() = Wide(begin - at, 16, 3, num_invited);
      *e.add_segments() = Wide(end - begin, 0, 2, num_invited);
      at = end;
    }
  }
  if (layout.length > at) *e.add_segments() = Wide(layout.length - at, 16, 3, num_invited);
  return e;
}

v1::SecAggEncoding FitEvaluateEncoding(size_t num_parameters,
                                       const proto::EvaluationLayout& evaluation, double clip,
                                       uint32_t num_invited) {
  v1::SecAggEncoding e = FitEncoding(num_parameters, clip, num_invited);
  const v1::SecAggEncoding evaluation_part =
      EvaluateEncoding(evaluation, /*noised=*/false, num_invited);
  for (const v1::SecAggSegment& s : evaluation_part.segments()) *e.add_segments() = s;
  return e;
}

v1::SecAggEncoding AnalyticsEncoding(size_t length, uint32_t num_invited) {
  v1::SecAggEncoding e;
  *e.add_segments() = Wide(length, 40, 4, num_invited);
  return e;
}

}  // namespace tessera::secagg
