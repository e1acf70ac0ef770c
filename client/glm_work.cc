#include "client/glm_work.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "client/dataset.h"
#include "common/status.h"
#include "glm/cox.h"
#include "glm/glm.h"
#include "glm/spec.h"
#include "proto/glm_layout.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace {

// A site's rows as the regression sees them.
struct Rows {
  Eigen::MatrixXd x;  // n × p, intercept column(s) first (none for COX)
  Eigen::VectorXd y;  // the label (COX: the time)
  Eigen::VectorXd event;
  Eigen::VectorXd offset;   // empty without one
  Eigen::VectorXd weights;  // empty without them
};

absl::Status WithSource(const std::string& source, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(source, ": ", status.message()));
}

// The columns the task names, from `table`; `intercepts` intercept columns of which
// `own` (−1: all of them) is 1.
absl::StatusOr<Rows> LoadRows(const v1::TaskSpec& spec, const CsvTable& table,
                              const std::string& source, int intercepts, int own) {
  const v1::GlmSpec& g = spec.model().glm();
  std::vector<std::string> columns(spec.dataset().features().begin(),
                                   spec.dataset().features().end());
  const auto d = static_cast<int>(columns.size());
  if (!g.offset().empty()) columns.push_back(g.offset());
  if (!g.weights().empty()) columns.push_back(g.weights());
  ASSIGN_OR_RETURN(Dataset data, SelectColumns(table, columns, spec.dataset().label(),
                                               spec.dataset().event(), source));
  const auto n = static_cast<Eigen::Index>(data.num_rows);
  const auto width = static_cast<size_t>(data.num_features);
  Rows rows;
  rows.x.resize(n, intercepts + d);
  rows.y.resize(n);
  if (!g.offset().empty()) rows.offset.resize(n);
  if (!g.weights().empty()) rows.weights.resize(n);
  if (!data.event.empty()) rows.event.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double* cells = data.x.data() + static_cast<size_t>(i) * width;
    for (int c = 0; c < intercepts; ++c) rows.x(i, c) = (own < 0 || c == own) ? 1.0 : 0.0;
    for (int j = 0; j < d; ++j) rows.x(i, intercepts + j) = cells[j];
    int extra = d;
    if (!g.offset().empty()) {
      const double value = cells[extra++];
      if (g.log_offset() && !(value > 0)) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": column '", g.offset(),
                                                       "' has a value that is not > 0 on row ",
                                                       i + 1, " (log_offset takes its logarithm)"));
      }
      rows.offset(i) = g.log_offset() ? std::log(value) : value;
    }
    if (!g.weights().empty()) rows.weights(i) = cells[extra];
    rows.y(i) = data.y[static_cast<size_t>(i)];
    if (!data.event.empty()) rows.event(i) = data.event[static_cast<size_t>(i)];
  }
  return rows;
}

absl::StatusOr<std::vector<double>> Sums(const v1::TaskSpec& spec, const Rows& rows,
                                         const Eigen::VectorXd& beta,
                                         std::span<const double> feature_means) {
  const v1::GlmSpec& g = spec.model().glm();
  if (const std::optional<glm::CoxGrid> grid = glm::PooledGridOf(g)) {
    // Centred by the pooled means: the same shift at every site keeps the pooled risk sets'
    // ratios, and e^eta near 1.
    if (feature_means.size() != static_cast<size_t>(rows.x.cols())) {
      return absl::FailedPreconditionError(
          "the item's standardisation has no mean for every feature (a pooled Cox model "
          "centres by them)");
    }
    Eigen::MatrixXd centred = rows.x;
    for (Eigen::Index j = 0; j < centred.cols(); ++j) {
      centred.col(j).array() -= feature_means[static_cast<size_t>(j)];
    }
    return glm::PooledCoxSiteSums(*grid, centred, rows.y, rows.event, beta);
  }
  if (g.family() == v1::GlmSpec::COX) {
    const glm::Ties ties = glm::TiesOf(g.ties());
    ASSIGN_OR_RETURN(glm::CoxSums sums,
                     glm::CoxStratumContribution(ties, rows.x, rows.y, rows.event, beta));
    return glm::FlattenCox(sums);
  }
  ASSIGN_OR_RETURN(glm::SiteSums sums,
                   glm::SiteContribution(glm::FamilyOf(g.family()), rows.x, rows.y, rows.offset,
                                         rows.weights, beta));
  return glm::Flatten(sums);
}

}  // namespace

absl::StatusOr<std::vector<double>> GlmContribution(const v1::TaskSpec& spec, const CsvTable& table,
                                                    const std::string& source,
                                                    std::span<const double> coefficients,
                                                    const GlmSitePlace& place) {
  const v1::GlmSpec& g = spec.model().glm();
  const bool fixed = g.site_fixed_effects() && g.family() != v1::GlmSpec::COX;
  int own = -1;
  if (fixed) {
    const auto it = std::find(place.sites.begin(), place.sites.end(), place.own_site);
    if (it == place.sites.end() ||
        std::count(place.sites.begin(), place.sites.end(), place.own_site) != 1) {
      return absl::FailedPreconditionError(
          "the item's site list (glm_sites) does not name this site exactly once");
    }
    if (!std::is_sorted(place.sites.begin(), place.sites.end()) ||
        std::adjacent_find(place.sites.begin(), place.sites.end()) != place.sites.end()) {
      return absl::FailedPreconditionError(
          "the item's site list (glm_sites) is not sorted without repeats");
    }
    own = static_cast<int>(it - place.sites.begin());
  }
  ASSIGN_OR_RETURN(const size_t p, proto::GlmCoefficientCount(spec, place.sites.size()));
  if (coefficients.size() != p) {
    return absl::FailedPreconditionError(absl::StrCat("the model has ", coefficients.size(),
                                                      " coefficients, the task ", p, " for ",
                                                      place.sites.size(), " sites"));
  }
  // The coordinator's coefficients: a non-finite one is a bad item, not bad local data.
  for (double b : coefficients) {
    if (!std::isfinite(b)) {
      return absl::FailedPreconditionError("the item's coefficients are not all finite numbers");
    }
  }
  const int intercepts = g.family() == v1::GlmSpec::COX ? 0
                         : fixed                        ? static_cast<int>(place.sites.size())
                                                        : 1;
  ASSIGN_OR_RETURN(Rows rows, LoadRows(spec, table, source, intercepts, own));
  Eigen::VectorXd beta(static_cast<Eigen::Index>(p));
  for (size_t i = 0; i < p; ++i) beta(static_cast<Eigen::Index>(i)) = coefficients[i];
  absl::StatusOr<std::vector<double>> flat = Sums(spec, rows, beta, place.feature_means);
  if (!flat.ok()) return WithSource(source, flat.status());
  return flat;
}

absl::Status CheckGlmRows(const v1::TaskSpec& spec, const CsvTable& table,
                          const std::string& source) {
  const bool cox = spec.model().glm().family() == v1::GlmSpec::COX;
  ASSIGN_OR_RETURN(Rows rows, LoadRows(spec, table, source, cox ? 0 : 1, -1));
  if (rows.x.rows() == 0) return absl::InvalidArgumentError(absl::StrCat(source, ": no rows"));
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(rows.x.cols());
  // At zero coefficients the centring changes nothing (round 0 has no pooled means yet).
  const std::vector<double> no_means(static_cast<size_t>(rows.x.cols()), 0.0);
  return WithSource(source, Sums(spec, rows, zero, no_means).status());
}

}  // namespace tessera::client
