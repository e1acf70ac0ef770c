// SecAgg+'s sparse communication graph and its parameters (Bell, Bonawitz, Gascón, Lepoint,
// Raykova, CCS 2020; docs/secure-aggregation.md, "SecAgg+ for large cohorts"), which the
// sessions' state machines (client.h, server.h) use when a setup carries `sparse`.
//
// The graph. The n listed sites, at positions 0..n-1 of the session's sorted list, are
// placed on a ring in a pseudo-random order drawn from `seed`, and each is joined to the
// k/2 nearest sites on either side
// of it on that ring: a Harary graph H(n, k) over a random permutation. k is even; k >= n - 1
// gives the complete graph (plain Bonawitz). Every site computes the graph itself. The
// seed must be a coin no party can steer: not the session id alone, which the coordinator
// (choosing the list after seeing the advertisements) and colluding sites (advertising
// last) can grind offline, but a hash of it and of every listed site's random bytes,
// committed in its advertisement and revealed once the list is fixed (the design:
// docs/secure-aggregation.md, "The graph").
//
// The parameters. For n sites of which at most a fraction gamma collude with the
// coordinator and at most a fraction delta drop out, the smallest even k, with the
// per-neighbourhood threshold t = floor(2k/3) + 1 (the collusion bound of the complete
// graph, applied within each neighbourhood), such that, over the random placement:
//   (1) security: P[some neighbourhood holds at least ceil(k/3) colluders] <= 2^-sigma;
//   (2) correctness: P[some neighbourhood keeps fewer than t sites that neither collude nor
//       drop] <= 2^-eta;
// each from the exact hypergeometric tail (a neighbourhood is k sites drawn without
// replacement from the n - 1 others) and a union bound over the n sites; and
//   (3) no isolation: P[the graph of the sites that neither collude nor drop falls apart]
//       <= 2^-sigma (Log2IsolationBound).
// On the ring, an edge spans at most k/2 places, so the remaining sites stay connected
// unless two runs of at least k/2 consecutive places are all lost; condition (3) bounds
// that by the union over the places the runs may start at.
//
// Pure functions; thread-safe.
#ifndef TESSERA_SECAGG_NEIGHBOURHOOD_H_
#define TESSERA_SECAGG_NEIGHBOURHOOD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::v1 {
class SecAggSparse;
}  // namespace tessera::v1

namespace tessera::secagg {

// The security and correctness parameters (bits) the daemons choose k for: sigma = 40, so
// that even 2^20 sessions keep the failure below 2^-20, and eta = 30 (a failed reconstruction
// costs one session attempt, never privacy).
inline constexpr uint32_t kSecAggPlusSecurityBits = 40;
inline constexpr uint32_t kSecAggPlusCorrectnessBits = 30;

struct NeighbourhoodParameters {
  uint32_t k = 0;         // neighbours per site: even, or n - 1 for the complete graph
  uint32_t t = 0;         // shares needed to rebuild a site's secrets: floor(2k/3) + 1
  bool complete = false;  // no sparse graph meets the conditions: k = n - 1
  // log2 of the two failure probabilities (union bounds) at this k; -inf when impossible.
  double log2_security_failure = 0;
  double log2_correctness_failure = 0;
  double log2_isolation_failure = 0;
};

// INVALID_ARGUMENT unless n >= 3, 0 <= gamma < 1/3, 0 <= delta < 1, gamma + delta < 1,
// and sigma and eta in 1..256 (each named).
absl::StatusOr<NeighbourhoodParameters> ChooseNeighbourhood(uint32_t n, double gamma, double delta,
                                                            uint32_t sigma, uint32_t eta);

// log2 P[X >= x] for X hypergeometric: `draws` drawn without replacement from `population`
// items of which `marked` are marked. -inf when x exceeds what can be drawn; 0 when x <= 0.
// Requires marked <= population and draws <= population.
double Log2HypergeometricTail(uint32_t population, uint32_t marked, uint32_t draws, uint32_t x);

// log2 of an upper bound on P[the sites of H(n, k) over a uniformly random ring, with
// `lost` of them removed, are not connected]: the smaller of n * P[k/2 given places all
// lost] and n^2 * P[k given places all lost] (two runs of k/2), capped at 0; -inf when
// fewer than k/2 sites are lost. Requires lost <= n, k even, 2 <= k < n - 1.
double Log2IsolationBound(uint32_t n, uint32_t lost, uint32_t k);

// For every position 0..n-1, its neighbours' positions, ascending. INVALID_ARGUMENT unless
// n >= 2, k >= 2, and k is even or k >= n - 1, and seed is non-empty.
absl::StatusOr<std::vector<std::vector<uint32_t>>> Neighbourhoods(std::string_view seed, uint32_t n,
                                                                  uint32_t k);

// t_k = floor(2k/3) + 1: the shares that rebuild a secret shared in a neighbourhood of k.
uint32_t NeighbourhoodThreshold(uint32_t k);

// The fewest honest sites whose inputs' sum a cheating coordinator can learn on its own in a
// SecAgg+ session with neighbourhoods of k, as long as no neighbourhood holds ceil(k/3)
// colluders (condition 1): a survivor's self-mask seed needs t_k shares from its closed
// neighbourhood, of which at most ceil(k/3) - 1 come from colluders, so a group the
// coordinator can unmask apart from the rest holds t_k - ceil(k/3) + 1 honest sites
// (docs/secure-aggregation.md, "What the coordinator can learn").
uint32_t SmallestLearnableGroup(uint32_t k);

// SecAgg+: how many of the consistency signatures on the survivor set a site verifies, a
// uniform random sample it draws once the coordinator has listed them (any invalid one
// aborts: an honest coordinator forwards only signatures it verified). A coordinator that
// shows two groups of sites two survivor sets (to learn a site's self-mask seed from one
// group and its mask key from the other) has at most listed + c valid signatures over both
// sets together (c = floor(colluding_fraction * invited) colluders sign both), so one
// group's set carries at most the share r = (listed + c) / (2 threshold) of valid ones
// among any threshold listed; a site of it accepts with probability at most r^s. s =
// ceil(security_bits / -log2 r) makes that at most 2^-security_bits; `threshold` (verify
// until threshold are valid, as full Bonawitz) when r >= 1 or s would reach it. 116 at
// listed = 1,000, threshold = 667, 5 % colluders, 40 bits.
uint32_t ConsistencySampleSize(const v1::SecAggSparse& sparse, uint32_t invited, uint32_t listed,
                               uint32_t threshold);

// The checks both ends apply to a setup's `sparse` for `listed` clients out of `invited`
// (at the setup, listed = invited; once the list is fixed, its size): INVALID_ARGUMENT
// naming the field unless k is even with 2 <= k < invited - 1, t_k is
// NeighbourhoodThreshold(k), and the fractions and bits are ones ChooseNeighbourhood
// accepts; FAILED_PRECONDITION when k is below what ChooseNeighbourhood gives for `listed`
// sites of which floor(gamma * invited) collude (a coordinator that lists fewer sites
// raises the colluding fraction among them), with the least k it accepts in the message.
absl::Status ValidateSparse(const v1::SecAggSparse& sparse, uint32_t invited, uint32_t listed);

// Neighbourhoods(seed, n, k)[position] alone, in O(n) time and memory (what one site
// needs). INVALID_ARGUMENT as Neighbourhoods, or for a position >= n.
absl::StatusOr<std::vector<uint32_t>> NeighboursOf(std::string_view seed, uint32_t n, uint32_t k,
                                                   uint32_t position);

// The `sparse` of a setup for n invited sites: the least k that ChooseNeighbourhood accepts
// for every list the session may end up with — n sites down to DefaultThreshold(n), with
// floor(gamma * n) colluders among them (ValidateSparse) — t_k = NeighbourhoodThreshold(k),
// and the parameters themselves; nullopt when no sparse graph meets the conditions for
// every such list (the complete graph, full Bonawitz, is then used). INVALID_ARGUMENT as
// ChooseNeighbourhood. Costs up to n/3 ChooseNeighbourhood calls (about 0.1 s at n =
// 1,000).
absl::StatusOr<std::optional<v1::SecAggSparse>> SparseSetup(uint32_t n, double gamma, double delta,
                                                            uint32_t sigma, uint32_t eta);

// A SecAgg+ session's graph over its listed clients, by id: Neighbourhoods(seed, n, k) over
// the clients' positions in the (sorted) list. Immutable; thread-safe.
class NeighbourGraph {
 public:
  // `ids`: the listed clients, sorted without repeats. INVALID_ARGUMENT as Neighbourhoods,
  // or for unsorted ids.
  static absl::StatusOr<NeighbourGraph> Create(std::string_view seed, std::vector<std::string> ids,
                                               uint32_t k);

  // Whether a and b are joined (false for an id not listed, and for a = b).
  bool AreNeighbors(const std::string& a, const std::string& b) const;
  // The neighbours of `id`, sorted; empty for an id not listed.
  std::vector<std::string> Neighbours(const std::string& id) const;

 private:
  NeighbourGraph(std::vector<std::string> ids, std::vector<std::vector<uint32_t>> adjacency)
      : ids_(std::move(ids)), adjacency_(std::move(adjacency)) {}
  // The position of `id` in ids_, or -1.
  int64_t Position(const std::string& id) const;

  std::vector<std::string> ids_;
  std::vector<std::vector<uint32_t>> adjacency_;  // sorted positions
};

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_NEIGHBOURHOOD_H_
