#include "secagg/neighbourhood.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "proto/secagg.pb.h"
#include "secagg/protocol.h"

namespace tessera::secagg {
namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

// The colluding fraction among `listed` sites of `colluders` (a whole number): half a site
// above it, so that ChooseNeighbourhood's floor(gamma * listed) is `colluders` exactly
// whatever the rounding.
double ListedFraction(double colluders, uint32_t listed) { return (colluders + 0.5) / listed; }

double LogChoose(double n, double r) {
  return std::lgamma(n + 1) - std::lgamma(r + 1) - std::lgamma(n - r + 1);
}

// Uniform 64-bit words from SHA-256(seed || label || counter): a random-oracle stream.
class SeededStream {
 public:
  explicit SeededStream(std::string_view seed) : seed_(seed) {}

  uint64_t Next() {
    if (used_ == 4) Refill();
    // Little-endian whatever the machine: every site must draw the same graph.
    uint64_t word = 0;
    for (int i = 7; i >= 0; --i) {
      word = (word << 8) | static_cast<unsigned char>(block_[8 * used_ + i]);
    }
    ++used_;
    return word;
  }

  // Uniform in [0, bound), bound >= 1, without modulo bias (rejection sampling).
  uint64_t Below(uint64_t bound) {
    const uint64_t limit =
        std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
    uint64_t word = Next();
    while (word >= limit) word = Next();
    return word % bound;
  }

 private:
  void Refill() {
    std::string input = absl::StrCat(seed_, "tessera secagg+ neighbourhoods v1");
    for (int i = 0; i < 8; ++i) input.push_back(static_cast<char>((counter_ >> (8 * i)) & 0xff));
    block_ = crypto::Sha256(input);
    ++counter_;
    used_ = 0;
  }

  const std::string seed_;
  std::string block_;
  uint64_t counter_ = 0;
  int used_ = 4;
};

}  // namespace

double Log2HypergeometricTail(uint32_t population, uint32_t marked, uint32_t draws, uint32_t x) {
  if (x == 0) return 0;
  const uint32_t most = std::min(marked, draws);
  const uint32_t unmarked = population - marked;
  // At least draws - unmarked marked items are always drawn.
  const uint32_t least = draws > unmarked ? draws - unmarked : 0;
  if (x > most) return kNegativeInfinity;
  if (x <= least) return 0;
  const double total = LogChoose(population, draws);
  double max_term = kNegativeInfinity;
  std::vector<double> terms;
  terms.reserve(most - x + 1);
  for (uint32_t i = x; i <= most; ++i) {
    const double term = LogChoose(marked, i) + LogChoose(unmarked, draws - i) - total;
    terms.push_back(term);
    max_term = std::max(max_term, term);
  }
  double sum = 0;
  for (double term : terms) sum += std::exp(term - max_term);
  return std::min(0.0, (max_term + std::log(sum)) / std::log(2.0));
}

double Log2IsolationBound(uint32_t n, uint32_t lost, uint32_t k) {
  const uint32_t run = k / 2;
  // P[`places` given places all lost]: every draw of them from the n is a lost site.
  auto all_lost = [&](uint32_t places) {
    if (places > lost) return kNegativeInfinity;
    return (LogChoose(lost, places) - LogChoose(n, places)) / std::log(2.0);
  };
  const double log2_n = std::log2(static_cast<double>(n));
  const double one_run = log2_n + all_lost(run);
  const double two_runs = 2 * log2_n + all_lost(2 * run);
  return std::min(0.0, std::min(one_run, two_runs));
}

namespace {

// The failure probabilities of H(n, k) with `colluders` colluding and `lost` sites lost to
// collusion or dropout (k even, 2 <= k < n - 1).
NeighbourhoodParameters AtK(uint32_t n, uint32_t colluders, uint32_t lost, uint32_t k) {
  const double log2_n = std::log2(static_cast<double>(n));
  NeighbourhoodParameters p;
  p.k = k;
  p.t = NeighbourhoodThreshold(k);
  // The other n - 1 sites hold every colluder (a colluding site's own neighbourhood is not
  // at stake), and every site lost to collusion or dropout.
  p.log2_security_failure =
      log2_n + Log2HypergeometricTail(n - 1, std::min(colluders, n - 1), k, (k + 2) / 3);
  p.log2_correctness_failure =
      log2_n + Log2HypergeometricTail(n - 1, std::min(lost, n - 1), k, k - p.t + 1);
  p.log2_isolation_failure = Log2IsolationBound(n, std::min(lost, n), k);
  return p;
}

bool Meets(const NeighbourhoodParameters& p, uint32_t sigma, uint32_t eta) {
  return p.log2_security_failure <= -static_cast<double>(sigma) &&
         p.log2_correctness_failure <= -static_cast<double>(eta) &&
         p.log2_isolation_failure <= -static_cast<double>(sigma);
}

// Whether k meets the conditions for `listed` sites of which `colluders` collude, with
// dropout fraction delta.
bool MeetsListed(uint32_t listed, double colluders, double delta, uint32_t sigma, uint32_t eta,
                 uint32_t k) {
  if (k >= listed - 1) return true;  // the complete graph
  const auto c = static_cast<uint32_t>(colluders);
  // As ChooseNeighbourhood counts them for gamma = ListedFraction(colluders, listed).
  const auto lost = static_cast<uint32_t>(std::floor(colluders + 0.5 + delta * listed));
  return Meets(AtK(listed, c, lost, k), sigma, eta);
}

}  // namespace

absl::StatusOr<NeighbourhoodParameters> ChooseNeighbourhood(uint32_t n, double gamma, double delta,
                                                            uint32_t sigma, uint32_t eta) {
  if (n < 3) return absl::InvalidArgumentError(absl::StrCat("n must be at least 3, got ", n));
  if (!(gamma >= 0 && gamma < 1.0 / 3)) {
    return absl::InvalidArgumentError(absl::StrCat("gamma must be in [0, 1/3), got ", gamma));
  }
  if (!(delta >= 0 && delta < 1) || !(gamma + delta < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("delta must be in [0, 1) with gamma + delta < 1, got ", delta));
  }
  if (sigma < 1 || sigma > 256) {
    return absl::InvalidArgumentError(absl::StrCat("sigma must be in 1..256, got ", sigma));
  }
  if (eta < 1 || eta > 256) {
    return absl::InvalidArgumentError(absl::StrCat("eta must be in 1..256, got ", eta));
  }
  const auto colluders = static_cast<uint32_t>(std::floor(gamma * n));
  const auto lost = static_cast<uint32_t>(std::floor((gamma + delta) * n));
  NeighbourhoodParameters p;
  for (uint32_t k = 2; k < n - 1; k += 2) {
    p = AtK(n, colluders, lost, k);
    if (Meets(p, sigma, eta)) return p;
  }
  p.k = n - 1;
  p.t = 2 * (n - 1) / 3 + 1;
  p.complete = true;
  p.log2_security_failure = kNegativeInfinity;
  p.log2_correctness_failure = kNegativeInfinity;
  p.log2_isolation_failure = kNegativeInfinity;
  return p;
}

namespace {

absl::Status CheckGraphArguments(std::string_view seed, uint32_t n, uint32_t k) {
  if (n < 2 || k < 2 || (k % 2 != 0 && k < n - 1) || seed.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "neighbourhoods need n >= 2, an even k >= 2 (or k >= n - 1) and a seed; got n = ", n,
        ", k = ", k, seed.empty() ? ", no seed" : ""));
  }
  return absl::OkStatus();
}

// ring[r]: the position at place r of the ring (Fisher-Yates from the seeded stream).
std::vector<uint32_t> Ring(std::string_view seed, uint32_t n) {
  std::vector<uint32_t> ring(n);
  std::iota(ring.begin(), ring.end(), 0U);
  SeededStream stream(seed);
  for (uint32_t i = n - 1; i > 0; --i) {
    std::swap(ring[i], ring[static_cast<uint32_t>(stream.Below(uint64_t{i} + 1))]);
  }
  return ring;
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> NeighboursOf(std::string_view seed, uint32_t n, uint32_t k,
                                                   uint32_t position) {
  RETURN_IF_ERROR(CheckGraphArguments(seed, n, k));
  if (position >= n) {
    return absl::InvalidArgumentError(absl::StrCat("position ", position, " of ", n, " sites"));
  }
  std::vector<uint32_t> out;
  if (k >= n - 1) {  // the complete graph
    for (uint32_t j = 0; j < n; ++j) {
      if (j != position) out.push_back(j);
    }
    return out;
  }
  const std::vector<uint32_t> ring = Ring(seed, n);
  const auto r =
      static_cast<uint32_t>(std::find(ring.begin(), ring.end(), position) - ring.begin());
  for (uint32_t step = 1; step <= k / 2; ++step) {
    out.push_back(ring[(r + step) % n]);
    out.push_back(ring[(r + n - step) % n]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<std::vector<uint32_t>>> Neighbourhoods(std::string_view seed, uint32_t n,
                                                                  uint32_t k) {
  RETURN_IF_ERROR(CheckGraphArguments(seed, n, k));
  std::vector<std::vector<uint32_t>> out(n);
  if (k >= n - 1) {  // the complete graph
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t j = 0; j < n; ++j) {
        if (j != i) out[i].push_back(j);
      }
    }
    return out;
  }
  const std::vector<uint32_t> ring = Ring(seed, n);
  for (uint32_t r = 0; r < n; ++r) {
    for (uint32_t step = 1; step <= k / 2; ++step) {
      out[ring[r]].push_back(ring[(r + step) % n]);
      out[ring[r]].push_back(ring[(r + n - step) % n]);
    }
  }
  for (std::vector<uint32_t>& neighbours : out) std::sort(neighbours.begin(), neighbours.end());
  return out;
}

uint32_t NeighbourhoodThreshold(uint32_t k) { return 2 * k / 3 + 1; }

uint32_t SmallestLearnableGroup(uint32_t k) {
  const uint32_t colluders = (k + 2) / 3 - 1;  // ceil(k/3) - 1
  return NeighbourhoodThreshold(k) - colluders;
}

uint32_t ConsistencySampleSize(const v1::SecAggSparse& sparse, uint32_t invited, uint32_t listed,
                               uint32_t threshold) {
  const double colluders = std::floor(sparse.colluding_fraction() * static_cast<double>(invited));
  const double r =
      (static_cast<double>(listed) + colluders) / (2.0 * static_cast<double>(threshold));
  if (!(r > 0) || r >= 1) return threshold;
  const double s = std::ceil(static_cast<double>(sparse.security_bits()) / -std::log2(r));
  return s >= static_cast<double>(threshold) ? threshold : static_cast<uint32_t>(s);
}

absl::Status ValidateSparse(const v1::SecAggSparse& sparse, uint32_t invited, uint32_t listed) {
  const uint32_t k = sparse.neighbours();
  if (k < 2 || k % 2 != 0 || invited < 4 || k >= invited - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("setup.sparse.neighbours must be even and in 2..n - 2 for n = ", invited,
                     " invited clients, got ", k));
  }
  if (sparse.neighbour_threshold() != NeighbourhoodThreshold(k)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "setup.sparse.neighbour_threshold must be floor(2k/3) + 1 = ", NeighbourhoodThreshold(k),
        " for k = ", k, ", got ", sparse.neighbour_threshold()));
  }
  if (listed < 3 || listed > invited) {
    return absl::InvalidArgumentError(
        absl::StrCat(listed, " listed clients out of ", invited, " invited"));
  }
  // The colluders are a count of the invited sites; among fewer listed ones they weigh more.
  const double colluders = std::floor(sparse.colluding_fraction() * invited);
  const double gamma = ListedFraction(colluders, listed);
  absl::StatusOr<NeighbourhoodParameters> want = ChooseNeighbourhood(
      listed, gamma, sparse.dropout_fraction(), sparse.security_bits(), sparse.correctness_bits());
  if (!want.ok()) {
    if (listed == invited) {
      return absl::InvalidArgumentError(absl::StrCat("setup.sparse: ", want.status().message()));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "setup.sparse: ", colluders, " colluders of ", invited, " invited sites are too many for ",
        listed, " listed: ", want.status().message()));
  }
  if (!MeetsListed(listed, colluders, sparse.dropout_fraction(), sparse.security_bits(),
                   sparse.correctness_bits(), k)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "setup.sparse.neighbours ", k, " is below what ", listed, " listed sites need with ",
        colluders, " colluding, delta = ", sparse.dropout_fraction(),
        ", sigma = ", sparse.security_bits(), ", eta = ", sparse.correctness_bits(),
        " (the least k is ", want->k, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::SecAggSparse>> SparseSetup(uint32_t n, double gamma, double delta,
                                                            uint32_t sigma, uint32_t eta) {
  ASSIGN_OR_RETURN(NeighbourhoodParameters p, ChooseNeighbourhood(n, gamma, delta, sigma, eta));
  if (p.complete) return std::optional<v1::SecAggSparse>();
  // A k that still holds when the list is as short as the threshold allows: colluders are
  // a count of the invited sites, and weigh more among fewer listed ones.
  const double colluders = std::floor(gamma * n);
  if (ListedFraction(colluders, DefaultThreshold(n)) >= 1.0 / 3) {
    return std::optional<v1::SecAggSparse>();
  }
  uint32_t k = p.k;
  for (uint32_t listed = DefaultThreshold(n); listed <= n && k < n - 1; ++listed) {
    while (k < n - 1 && !MeetsListed(listed, colluders, delta, sigma, eta, k)) k += 2;
  }
  if (k >= n - 1) return std::optional<v1::SecAggSparse>();
  v1::SecAggSparse sparse;
  sparse.set_neighbours(k);
  sparse.set_neighbour_threshold(NeighbourhoodThreshold(k));
  sparse.set_colluding_fraction(gamma);
  sparse.set_dropout_fraction(delta);
  sparse.set_security_bits(sigma);
  sparse.set_correctness_bits(eta);
  return std::optional<v1::SecAggSparse>(std::move(sparse));
}

absl::StatusOr<NeighbourGraph> NeighbourGraph::Create(std::string_view seed,
                                                      std::vector<std::string> ids, uint32_t k) {
  for (size_t i = 1; i < ids.size(); ++i) {
    if (!(ids[i - 1] < ids[i])) {
      return absl::InvalidArgumentError("a neighbour graph needs sorted ids without repeats");
    }
  }
  ASSIGN_OR_RETURN(std::vector<std::vector<uint32_t>> adjacency,
                   Neighbourhoods(seed, static_cast<uint32_t>(ids.size()), k));
  return NeighbourGraph(std::move(ids), std::move(adjacency));
}

int64_t NeighbourGraph::Position(const std::string& id) const {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) return -1;
  return it - ids_.begin();
}

bool NeighbourGraph::AreNeighbors(const std::string& a, const std::string& b) const {
  const int64_t pa = Position(a);
  const int64_t pb = Position(b);
  if (pa < 0 || pb < 0) return false;
  const std::vector<uint32_t>& row = adjacency_[static_cast<size_t>(pa)];
  return std::binary_search(row.begin(), row.end(), static_cast<uint32_t>(pb));
}

std::vector<std::string> NeighbourGraph::Neighbours(const std::string& id) const {
  std::vector<std::string> out;
  const int64_t p = Position(id);
  if (p < 0) return out;
  for (uint32_t q : adjacency_[static_cast<size_t>(p)]) out.push_back(ids_[q]);
  return out;
}

}  // namespace tessera::secagg
