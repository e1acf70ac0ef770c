#include "proto/preparation.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "proto/glm_layout.h"
#include "proto/internal/names.h"

namespace tessera::proto {
namespace {

constexpr int kMaxLevels = 1000;
constexpr char kMissingSuffix[] = ":missing";

bool IsFeature(const v1::DatasetSpec& dataset, const std::string& name) {
  return std::find(dataset.features().begin(), dataset.features().end(), name) !=
         dataset.features().end();
}

// Whether the task reads `column` (a base of a feature, the label, the event, the offset or
// the weights).
bool Used(const v1::TaskSpec& spec, const std::string& column) {
  const v1::DatasetSpec& ds = spec.dataset();
  for (const std::string& f : ds.features()) {
    const std::optional<PreparedName> name = ResolveName(ds, f);
    if (name.has_value() && name->column == column) return true;
  }
  const v1::GlmSpec& glm = spec.model().glm();
  return column == ds.label() || column == ds.event() || column == glm.offset() ||
         column == glm.weights();
}

void ValidateEntry(const v1::TaskSpec& spec, int i, std::set<std::string>* seen,
                   std::vector<common::FieldError>* errors) {
  const v1::DatasetSpec& ds = spec.dataset();
  const v1::ColumnPreparation& p = ds.prepare(i);
  const std::string at = absl::StrCat("dataset.prepare[", i, "]");
  if (p.column().empty() || !internal::IsValidColumnName(p.column())) {
    errors->push_back({at + ".column", "required: a CSV header name without commas or quotes"});
    return;
  }
  if (!seen->insert(p.column()).second) {
    errors->push_back(
        {at + ".column", absl::StrCat("column '", p.column(), "' is prepared twice")});
  }
  if (!v1::ColumnPreparation::Missing_IsValid(p.missing())) {
    errors->push_back({at + ".missing",
                       "unknown (MISSING_REFUSE, DROP_ROW, IMPUTE_MEAN, "
                       "IMPUTE_CONSTANT, INDICATOR or IMPUTE_MODE)"});
  }
  if (!v1::ColumnPreparation::Transform_IsValid(p.transform())) {
    errors->push_back({at + ".transform", "unknown (LOG, LOG1P or SQRT)"});
  }
  if (!std::isfinite(p.fill())) errors->push_back({at + ".fill", "must be finite"});
  const bool categorical = p.levels_size() > 0;
  if (categorical) {
    std::set<std::string> levels;
    for (const std::string& level : p.levels()) {
      if (level.empty() || level == "NA" || !internal::IsValidColumnName(level)) {
        errors->push_back({at + ".levels",
                           "a level must be a non-empty name other than NA, "
                           "without commas or quotes"});
        break;
      }
      if (!levels.insert(level).second) {
        errors->push_back({at + ".levels", absl::StrCat("level '", level, "' is listed twice")});
        break;
      }
    }
    if (p.levels_size() < 2 || p.levels_size() > kMaxLevels) {
      errors->push_back({at + ".levels", "a categorical column has 2..1000 levels"});
    }
    if (p.transform() != v1::ColumnPreparation::TRANSFORM_NONE || p.clip_size() > 0) {
      errors->push_back({at + ".transform", "a categorical column takes no transform or clip"});
    }
    if (p.missing() == v1::ColumnPreparation::IMPUTE_MEAN ||
        p.missing() == v1::ColumnPreparation::IMPUTE_CONSTANT) {
      errors->push_back({at + ".missing",
                         "a categorical column's missing cells are refused, "
                         "dropped, marked (INDICATOR) or take the mode (IMPUTE_MODE)"});
    }
  } else if (p.missing() == v1::ColumnPreparation::IMPUTE_MODE) {
    errors->push_back({at + ".missing", "IMPUTE_MODE imputes a categorical column (levels)"});
  }
  if (p.clip_size() > 0 && (p.clip_size() != 2 || !std::isfinite(p.clip(0)) ||
                            !std::isfinite(p.clip(1)) || !(p.clip(0) < p.clip(1)))) {
    errors->push_back({at + ".clip", "must be [lo, hi]: two finite numbers, lo < hi"});
  }
  const v1::GlmSpec& glm = spec.model().glm();
  const bool role = p.column() == ds.label() || p.column() == ds.event() ||
                    p.column() == glm.offset() || p.column() == glm.weights();
  const bool imputes = p.missing() == v1::ColumnPreparation::IMPUTE_MEAN ||
                       p.missing() == v1::ColumnPreparation::IMPUTE_CONSTANT ||
                       p.missing() == v1::ColumnPreparation::INDICATOR ||
                       p.missing() == v1::ColumnPreparation::IMPUTE_MODE;
  if (role && (imputes || categorical)) {
    errors->push_back({at + ".missing",
                       "the label, event, offset and weights are neither "
                       "imputed nor categorical (DROP_ROW drops their rows)"});
  }
  if (p.standardize()) {
    if (!IsGlmTask(spec)) {
      errors->push_back({at + ".standardize",
                         "only for an exact regression (model.glm): a trained model "
                         "standardises every feature already"});
    } else if (categorical || !IsFeature(ds, p.column())) {
      errors->push_back({at + ".standardize",
                         "standardises a numeric feature: list the column itself in "
                         "dataset.features"});
    }
  }
  if (p.missing() == v1::ColumnPreparation::IMPUTE_MEAN && !IsFeature(ds, p.column())) {
    errors->push_back({at + ".missing",
                       "IMPUTE_MEAN imputes a feature: list the column in "
                       "dataset.features"});
  }
  if (!Used(spec, p.column())) {
    errors->push_back({at + ".column", absl::StrCat("column '", p.column(),
                                                    "' is prepared but the task does not use "
                                                    "it")});
  }
}

}  // namespace

const v1::ColumnPreparation* PreparationOf(const v1::DatasetSpec& dataset,
                                           const std::string& column) {
  for (const v1::ColumnPreparation& p : dataset.prepare()) {
    if (p.column() == column) return &p;
  }
  return nullptr;
}

std::optional<PreparedName> ResolveName(const v1::DatasetSpec& dataset, const std::string& name) {
  PreparedName out;
  if (const v1::ColumnPreparation* p = PreparationOf(dataset, name)) {
    if (p->levels_size() > 0) return std::nullopt;  // a categorical column is no value
    out.column = name;
    out.preparation = p;
    return out;
  }
  const std::string suffix = kMissingSuffix;
  if (name.size() > suffix.size() && name.ends_with(suffix)) {
    const std::string base = name.substr(0, name.size() - suffix.size());
    const v1::ColumnPreparation* p = PreparationOf(dataset, base);
    if (p != nullptr && p->missing() == v1::ColumnPreparation::INDICATOR) {
      out.column = base;
      out.preparation = p;
      out.kind = PreparedName::Kind::kMissingIndicator;
      return out;
    }
  }
  for (size_t eq = name.find('='); eq != std::string::npos; eq = name.find('=', eq + 1)) {
    const v1::ColumnPreparation* p = PreparationOf(dataset, name.substr(0, eq));
    if (p == nullptr || p->levels_size() == 0) continue;
    const std::string level = name.substr(eq + 1);
    for (int i = 1; i < p->levels_size(); ++i) {
      if (p->levels(i) == level) {
        out.column = name.substr(0, eq);
        out.preparation = p;
        out.kind = PreparedName::Kind::kLevel;
        out.level = i;
        return out;
      }
    }
    return std::nullopt;  // the reference level, or a level the entry does not declare
  }
  out.column = name;
  return out;
}

std::vector<std::string> FileColumns(const v1::TaskSpec& spec) {
  std::set<std::string> columns;
  if (spec.has_analytics()) {
    for (const v1::AnalyticsSpec::Query& q : spec.analytics().queries()) columns.insert(q.column());
    if (spec.analytics().has_filter()) columns.insert(spec.analytics().filter().column());
    return {columns.begin(), columns.end()};
  }
  const v1::DatasetSpec& ds = spec.dataset();
  for (const std::string& f : ds.features()) {
    const std::optional<PreparedName> name = ResolveName(ds, f);
    columns.insert(name.has_value() ? name->column : f);
  }
  for (const v1::ColumnPreparation& p : ds.prepare()) columns.insert(p.column());
  const v1::GlmSpec& glm = spec.model().glm();
  for (const std::string* c : {&ds.label(), &ds.event(), &glm.offset(), &glm.weights()}) {
    if (!c->empty()) columns.insert(*c);
  }
  return {columns.begin(), columns.end()};
}

std::vector<const v1::ColumnPreparation*> ImputedMeanEntries(const v1::DatasetSpec& dataset) {
  std::vector<const v1::ColumnPreparation*> out;
  for (const v1::ColumnPreparation& p : dataset.prepare()) {
    if (p.missing() == v1::ColumnPreparation::IMPUTE_MEAN) out.push_back(&p);
  }
  return out;
}

std::vector<const v1::ColumnPreparation*> ImputedModeEntries(const v1::DatasetSpec& dataset) {
  std::vector<const v1::ColumnPreparation*> out;
  for (const v1::ColumnPreparation& p : dataset.prepare()) {
    if (p.missing() == v1::ColumnPreparation::IMPUTE_MODE) out.push_back(&p);
  }
  return out;
}

size_t ImputationCountLength(const v1::DatasetSpec& dataset) {
  size_t length = ImputedMeanEntries(dataset).size();
  for (const v1::ColumnPreparation* e : ImputedModeEntries(dataset)) {
    length += static_cast<size_t>(e->levels_size());
  }
  return length;
}

namespace {

// Makes `pooled`'s mean and standard deviation of feature `j` those of a column with sum
// `sum` and sum of squares `sum_sq` over all N rows.
void SetPooled(size_t j, double sum, double sum_sq, PooledStatistics* pooled) {
  const double n = static_cast<double>(pooled->num_rows);
  const double mean = sum / n;
  double var = sum_sq / n - mean * mean;
  if (var < 0) var = 0;
  double sd = std::sqrt(var);
  if (sd <= 1e-12 * std::max(1.0, std::fabs(mean))) sd = 1.0;
  pooled->mean[j] = mean;
  pooled->stddev[j] = sd;
}

absl::Status CheckCount(double count, double n, const std::string& column) {
  if (!(count >= 0) || count > n || count != std::floor(count)) {
    return absl::InvalidArgumentError(absl::StrCat("statistics: the present cells of column '",
                                                   column, "' are not a count in [0, N]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PooledImputations> PoolImputations(const v1::DatasetSpec& dataset,
                                                  std::span<const double> summed,
                                                  size_t num_columns, PooledStatistics* pooled) {
  const size_t base = StatisticsLength(num_columns);
  if (summed.size() != base + ImputationCountLength(dataset)) {
    return absl::InvalidArgumentError(absl::StrCat("statistics: ", summed.size(),
                                                   " values, expected ",
                                                   base + ImputationCountLength(dataset)));
  }
  const double n = static_cast<double>(pooled->num_rows);
  auto feature = [&](const std::string& name) -> std::optional<size_t> {
    const auto it = std::find(dataset.features().begin(), dataset.features().end(), name);
    const auto j = static_cast<size_t>(it - dataset.features().begin());
    if (it == dataset.features().end() || j >= pooled->mean.size()) return std::nullopt;
    return j;
  };
  PooledImputations out;
  size_t at = base;
  for (const v1::ColumnPreparation* e : ImputedMeanEntries(dataset)) {
    const double present = summed[at++];
    if (absl::Status st = CheckCount(present, n, e->column()); !st.ok()) return st;
    if (present == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", e->column(), "' has no present cell at any site: no mean to impute"));
    }
    const std::optional<size_t> j = feature(e->column());
    if (!j.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("IMPUTE_MEAN column '", e->column(), "' is not a feature"));
    }
    const double mean = summed[1 + *j] / present;
    // Imputed rows sit at the mean: Σx² over all rows gains (N − present)·mean².
    SetPooled(*j, summed[1 + *j] + (n - present) * mean,
              summed[1 + num_columns + *j] + (n - present) * mean * mean, pooled);
    out.means.push_back(mean);
  }
  for (const v1::ColumnPreparation* e : ImputedModeEntries(dataset)) {
    std::vector<double> counts(summed.begin() + static_cast<std::ptrdiff_t>(at),
                               summed.begin() + static_cast<std::ptrdiff_t>(at) + e->levels_size());
    at += static_cast<size_t>(e->levels_size());
    double present = 0;
    for (double c : counts) {
      if (absl::Status st = CheckCount(c, n, e->column()); !st.ok()) return st;
      present += c;
    }
    if (absl::Status st = CheckCount(present, n, e->column()); !st.ok()) return st;
    if (present == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", e->column(), "' has no present cell at any site: no level to impute"));
    }
    // The first of the most frequent levels.
    const auto mode =
        static_cast<uint32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
    out.modes.push_back(mode);
    // The one-hot column of the mode gains the missing cells (0/1 values: Σx² = Σx).
    for (int level = 1; level < e->levels_size(); ++level) {
      const std::optional<size_t> j = feature(absl::StrCat(e->column(), "=", e->levels(level)));
      if (!j.has_value()) continue;
      const double sum = counts[static_cast<size_t>(level)] +
                         (mode == static_cast<uint32_t>(level) ? n - present : 0);
      SetPooled(*j, sum, sum, pooled);
    }
  }
  return out;
}

void ValidatePreparation(const v1::TaskSpec& spec, std::vector<common::FieldError>* errors) {
  const v1::DatasetSpec& ds = spec.dataset();
  if (ds.prepare_size() == 0) return;
  if (spec.has_analytics()) {
    errors->push_back({"dataset.prepare",
                       "an analytics task skips the rows whose cell is not a "
                       "number; it takes no preparation"});
    return;
  }
  std::set<std::string> seen;
  for (int i = 0; i < ds.prepare_size(); ++i) ValidateEntry(spec, i, &seen, errors);
  for (int i = 0; i < ds.features_size(); ++i) {
    const std::string& f = ds.features(i);
    if (!ResolveName(ds, f).has_value()) {
      errors->push_back({absl::StrCat("dataset.features[", i, "]"),
                         absl::StrCat("'", f,
                                      "' is a categorical column (use its one-hot "
                                      "columns '<column>=<level>', the reference level "
                                      "left out) or a level it does not declare")});
    }
  }
}

}  // namespace tessera::proto
