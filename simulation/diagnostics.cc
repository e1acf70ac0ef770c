#include "simulation/diagnostics.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/glm_layout.h"
#include "proto/model_layout.h"
#include "proto/validation_split.h"

namespace tessera::simulation {
namespace {

constexpr double kDriftRise = 0.02;  // the last loss above the best by more than 2%
constexpr size_t kLeastSiteRows = 10;

}  // namespace

std::vector<std::string> DriftWarnings(const v1::TaskSpec& spec,
                                       const std::vector<v1::RoundRecord>& rounds) {
  if (spec.training().local_epochs() <= 1 || spec.has_analytics()) return {};
  std::map<uint32_t, double> loss;
  for (const v1::RoundRecord& r : rounds) {
    if (r.round() == 0) continue;
    for (const v1::Metric& m : r.metrics()) {
      if (m.name() == "loss") loss[r.round()] = m.value();
    }
  }
  if (loss.size() < 3) return {};
  auto best = std::min_element(loss.begin(), loss.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  auto last = std::prev(loss.end());
  auto before = std::prev(last);
  auto earlier = std::prev(before);
  const bool rising = last->second > before->second && before->second > earlier->second;
  if (!rising || !(last->second > best->second * (1 + kDriftRise))) return {};
  // With a validation split the rounds' loss is the validation loss (the test rows are
  // evaluated once, at the end).
  const bool split = proto::HasValidationSplit(spec);
  return {absl::StrFormat(
      "client drift: the %s loss rose from %.4g at round %u to %.4g at round %u "
      "(+%.1f%%) with %u local epochs a round; the sites' local optima pull the model apart "
      "(typical of a skewed partition): try fewer local epochs, FedProx "
      "(training.proximal_mu) or a smaller learning rate%s",
      split ? "validation" : "evaluation", best->second, best->first, last->second, last->first,
      100.0 * (last->second / best->second - 1), spec.training().local_epochs(),
      split ? ""
            : "; or hold out validation rows (training.validation_fraction) so that the "
              "best round is the one tested")};
}

std::vector<std::string> SmallSiteWarnings(const v1::TaskSpec& spec,
                                           const std::vector<size_t>& site_train_rows) {
  if (spec.has_analytics()) return {};  // its cells have their own floor (min_cell_size)
  size_t parameters = 0;
  const auto d = static_cast<size_t>(spec.dataset().features_size());
  if (proto::IsGlmTask(spec)) {
    parameters = proto::GlmCoefficientCount(spec, site_train_rows.size()).value_or(0);
  } else if (spec.has_model()) {
    parameters = proto::NumParameters(spec.model(), d).value_or(0);
  }
  const size_t least = std::max(kLeastSiteRows, parameters);
  std::vector<std::string> small;
  for (size_t k = 0; k < site_train_rows.size(); ++k) {
    if (site_train_rows[k] < least) {
      small.push_back(absl::StrFormat("site-%02d (%zu rows)", k + 1, site_train_rows[k]));
    }
  }
  if (small.empty()) return {};
  // A by-column partition can make hundreds: the first ten, and how many more.
  constexpr size_t kListed = 10;
  if (small.size() > kListed) {
    const size_t more = small.size() - kListed;
    small.resize(kListed);
    small.push_back(absl::StrCat("and ", more, " more"));
  }
  return {absl::StrCat("small sites: ", absl::StrJoin(small, ", "),
                       " hold fewer training rows than ", least,
                       " (10, or the model's parameters: below that a site's update is mostly "
                       "noise); with a by-column partition bin the column instead "
                       "(by-quantile:NAME:K) or choose another")};
}

}  // namespace tessera::simulation
