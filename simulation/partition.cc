#include "simulation/partition.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/splitmix64.h"

namespace tessera::simulation {

namespace {

void Shuffle(common::SplitMix64& rng, std::vector<size_t>& v) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Below(i)]);
}

double Normal(common::SplitMix64& rng) {
  // Box-Muller; 1 - u keeps the logarithm finite.
  const double u1 = 1.0 - rng.NextUnit();
  const double u2 = rng.NextUnit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// Gamma(shape, 1): Marsaglia & Tsang 2000; shape < 1 through Gamma(shape + 1) * U^(1/shape).
double Gamma(common::SplitMix64& rng, double shape) {
  if (shape < 1.0) {
    const double u = 1.0 - rng.NextUnit();
    return Gamma(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = Normal(rng);
    double v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    const double u = 1.0 - rng.NextUnit();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

}  // namespace

absl::StatusOr<Partition> ParsePartition(const std::string& text) {
  Partition p;
  if (text == "iid") return p;
  if (text == "round-robin") {
    p.kind = Partition::Kind::kRoundRobin;
    return p;
  }
  if (text.rfind("dirichlet:", 0) == 0) {
    p.kind = Partition::Kind::kDirichlet;
    if (!absl::SimpleAtod(text.substr(10), &p.alpha) || !std::isfinite(p.alpha) || p.alpha <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--partition ", text, ": dirichlet needs a positive ALPHA"));
    }
    return p;
  }
  if (text.rfind("by-column:", 0) == 0 && text.size() > 10) {
    p.kind = Partition::Kind::kByColumn;
    p.column = text.substr(10);
    return p;
  }
  if (text.rfind("by-quantile:", 0) == 0) {
    const std::string rest = text.substr(12);
    const size_t colon = rest.rfind(':');
    uint32_t bins = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(rest.substr(colon + 1), &bins) || bins < 2 || bins > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--partition '", text, "': by-quantile needs NAME:K with K from 2 to 1000 bins"));
    }
    p.kind = Partition::Kind::kByQuantile;
    p.column = rest.substr(0, colon);
    p.bins = bins;
    return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--partition '", text,
                   "': expected iid, round-robin, dirichlet:ALPHA, by-column:NAME or "
                   "by-quantile:NAME:K"));
}

absl::StatusOr<std::vector<std::vector<size_t>>> PartitionRows(std::span<const size_t> train_rows,
                                                               std::span<const double> labels,
                                                               std::span<const double> column,
                                                               const Partition& partition,
                                                               uint32_t num_sites, uint64_t seed) {
  common::SplitMix64 rng(seed ^ 0x7061727469746e6fULL);
  std::vector<size_t> rows(train_rows.begin(), train_rows.end());
  switch (partition.kind) {
    case Partition::Kind::kIid:
    case Partition::Kind::kRoundRobin: {
      if (num_sites == 0 || num_sites > rows.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot deal ", rows.size(), " training rows to ", num_sites, " sites"));
      }
      if (partition.kind == Partition::Kind::kIid) Shuffle(rng, rows);
      std::vector<std::vector<size_t>> sites(num_sites);
      for (size_t i = 0; i < rows.size(); ++i) sites[i % num_sites].push_back(rows[i]);
      return sites;
    }
    case Partition::Kind::kByColumn: {
      std::map<double, std::vector<size_t>> groups;
      for (size_t r : rows) groups[column[r]].push_back(r);
      if (groups.size() > partition.max_sites) {
        return absl::InvalidArgumentError(absl::StrCat(
            "column '", partition.column, "' has ", groups.size(),
            " distinct values on the training rows, more than the ", partition.max_sites,
            " sites --max-sites allows (a continuous column would make as many tiny sites): "
            "partition by-quantile:",
            partition.column, ":K to bin it, or raise --max-sites"));
      }
      if (num_sites != 0 && num_sites != groups.size()) {
        return absl::InvalidArgumentError(absl::StrCat("column '", partition.column, "' has ",
                                                       groups.size(), " values, not ", num_sites));
      }
      std::vector<std::vector<size_t>> sites;
      sites.reserve(groups.size());
      for (auto& [value, members] : groups) sites.push_back(std::move(members));
      return sites;
    }
    case Partition::Kind::kByQuantile: {
      if (num_sites != 0 && num_sites != partition.bins) {
        return absl::InvalidArgumentError(absl::StrCat("by-quantile makes ", partition.bins,
                                                       " sites, not ", num_sites, " (--clients)"));
      }
      if (rows.size() < partition.bins) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot cut ", rows.size(), " training rows into ", partition.bins, " quantile bins"));
      }
      std::vector<double> sorted;
      sorted.reserve(rows.size());
      for (size_t r : rows) sorted.push_back(column[r]);
      std::sort(sorted.begin(), sorted.end());
      std::vector<double> cuts;
      for (uint32_t j = 1; j < partition.bins; ++j) {
        cuts.push_back(sorted[j * sorted.size() / partition.bins]);
      }
      std::vector<std::vector<size_t>> sites(partition.bins);
      for (size_t r : rows) {
        const auto bin = std::upper_bound(cuts.begin(), cuts.end(), column[r]) - cuts.begin();
        sites[static_cast<size_t>(bin)].push_back(r);
      }
      size_t empty = 0;
      for (const auto& site : sites) empty += site.empty() ? 1 : 0;
      if (empty > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "column '", partition.column, "' cut at ", partition.bins, " quantiles leaves ", empty,
            " of the bins empty (too many equal values): ask for fewer bins"));
      }
      return sites;
    }
    case Partition::Kind::kDirichlet: {
      if (num_sites == 0 || num_sites > rows.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot deal ", rows.size(), " training rows to ", num_sites, " sites"));
      }
      std::map<int64_t, std::vector<size_t>> by_class;
      for (size_t r : rows) {
        const double y = labels[r];
        if (y != std::floor(y) || y < 0 || y > 10000) {
          return absl::InvalidArgumentError(
              "a dirichlet partition needs class labels 0..K-1 (a classification task)");
        }
        by_class[static_cast<int64_t>(y)].push_back(r);
      }
      // Label skew as in Hsu et al. 2019: for each class, shares of its rows drawn from
      // Dirichlet(alpha); draws that leave a site (nearly) empty are redrawn.
      const size_t min_rows =
          std::max<size_t>(1, std::min<size_t>(10, rows.size() / (4 * num_sites)));
      for (int attempt = 0; attempt < 1000; ++attempt) {
        std::vector<std::vector<size_t>> sites(num_sites);
        for (auto& [label, members] : by_class) {
          std::vector<size_t> shuffled = members;
          Shuffle(rng, shuffled);
          std::vector<double> share(num_sites);
          double total = 0;
          for (double& s : share) total += (s = Gamma(rng, partition.alpha));
          size_t start = 0;
          double cumulative = 0;
          for (uint32_t k = 0; k < num_sites; ++k) {
            cumulative += share[k] / total;
            const size_t end =
                k + 1 == num_sites
                    ? shuffled.size()
                    : std::min(shuffled.size(),
                               static_cast<size_t>(std::llround(
                                   cumulative * static_cast<double>(shuffled.size()))));
            for (size_t i = start; i < end; ++i) sites[k].push_back(shuffled[i]);
            start = std::max(start, end);
          }
        }
        bool ok = true;
        for (const auto& s : sites) ok = ok && s.size() >= min_rows;
        if (ok) return sites;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("dirichlet:", partition.alpha, " left a site with fewer than ", min_rows,
                       " rows in 1000 draws; use fewer sites or a larger alpha"));
    }
  }
  return absl::InternalError("unknown partition kind");
}

std::vector<size_t> SeededTestRows(size_t num_rows, uint64_t seed) {
  std::vector<size_t> all(num_rows);
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  common::SplitMix64 rng(seed ^ 0x7465737472777300ULL);
  Shuffle(rng, all);
  std::vector<size_t> test_rows(all.begin(), all.begin() + static_cast<long>(num_rows / 5));
  std::sort(test_rows.begin(), test_rows.end());
  return test_rows;
}

}  // namespace tessera::simulation
