// The columns a task's data preparation (DatasetSpec.prepare) makes, and the rules every
// side applies to it: which file columns a task reads, what a feature name stands for, and
// the validation of the entries. The preparation itself runs at the sites
// (client/prepare.h); the coordinator only pools, in round 0, the imputed columns' counts
// that give the pooled means and modes (PoolImputations).
//
// Derived columns: for a categorical entry (levels L_0..L_k) "<column>=<L_i>", i >= 1 (L_0
// is the reference); for an INDICATOR entry "<column>:missing". A numeric entry keeps its
// column's name for the prepared values.
//
// Pure functions; thread-safe.
#ifndef TESSERA_PROTO_PREPARATION_H_
#define TESSERA_PROTO_PREPARATION_H_

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/proto_text.h"
#include "proto/contribution_layout.h"
#include "proto/task.pb.h"

namespace tessera::proto {

// What a feature (or label, event) name stands for.
struct PreparedName {
  // The file column it comes from.
  std::string column;
  // The preparation of that column, or null for a column used as it is.
  const v1::ColumnPreparation* preparation = nullptr;
  enum class Kind { kValue, kLevel, kMissingIndicator };
  Kind kind = Kind::kValue;
  // kLevel: the level's index in preparation->levels (>= 1).
  int level = 0;
};

// `name` resolved against `dataset.prepare`: a derived name, a prepared column or a plain
// one. nullopt for a name no entry derives that is itself a categorical column (it is no
// feature), or an unknown derived form ("c=x" of a level c does not declare).
std::optional<PreparedName> ResolveName(const v1::DatasetSpec& dataset, const std::string& name);

// The entry of `column`, or null.
const v1::ColumnPreparation* PreparationOf(const v1::DatasetSpec& dataset,
                                           const std::string& column);

// The file columns `spec` reads: the base columns of its features, its label and event, its
// GLM offset and weights, and every prepared column (analytics: its query and filter
// columns). Sorted, unique.
std::vector<std::string> FileColumns(const v1::TaskSpec& spec);

// The IMPUTE_MEAN entries, in order (Standardization.imputed_means follows it), and the
// IMPUTE_MODE ones (Standardization.imputed_modes).
std::vector<const v1::ColumnPreparation*> ImputedMeanEntries(const v1::DatasetSpec& dataset);
std::vector<const v1::ColumnPreparation*> ImputedModeEntries(const v1::DatasetSpec& dataset);

// The counts a site appends to its round-0 statistics: one per IMPUTE_MEAN entry (its
// present cells), then one per level of each IMPUTE_MODE entry (its present cells of that
// level).
size_t ImputationCountLength(const v1::DatasetSpec& dataset);

struct PooledImputations {
  std::vector<double> means;    // per IMPUTE_MEAN entry
  std::vector<uint32_t> modes;  // per IMPUTE_MODE entry: the level's index
};

// Round 0 with imputation: every site's statistics vector (its missing cells of an
// IMPUTE_MEAN column counted as 0, of an IMPUTE_MODE column in no level) is followed by the
// ImputationCountLength counts. From the summed vector (StatisticsLength(num_columns) + the
// counts) this gives the pooled means of the present cells and the pooled most frequent
// levels (what sites impute), and makes `pooled`'s mean and standard deviation of the
// features concerned the imputed columns' (an IMPUTE_MEAN column keeps its mean and the
// spread of its present cells over all rows; a one-hot column of an IMPUTE_MODE entry gains
// the missing cells when its level is the mode). INVALID_ARGUMENT for a wrong length, a
// count that is not an integer in [0, N] (a column's counts together at most N), or a
// column with no present cell in the cohort.
absl::StatusOr<PooledImputations> PoolImputations(const v1::DatasetSpec& dataset,
                                                  std::span<const double> summed,
                                                  size_t num_columns, PooledStatistics* pooled);

// Errors of dataset.prepare, by field path ("dataset.prepare[2].levels"): a missing or
// repeated column, levels (2..1000, unique, non-empty) with a transform, clip, IMPUTE_MEAN
// or IMPUTE_CONSTANT, a clip that is not [lo, hi], a fill that is not finite, an entry the
// task does not use, an imputed label, event, offset or weights, an IMPUTE_MEAN column that
// is not itself a feature, a feature that names a categorical column itself or an
// unknown derived name; preparation on an analytics task.
void ValidatePreparation(const v1::TaskSpec& spec, std::vector<common::FieldError>* errors);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_PREPARATION_H_
