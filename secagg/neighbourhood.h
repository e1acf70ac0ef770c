// SecAgg+'s sparse communication graph and its parameters (Bell, Bonawitz, Gascón, Lepoint,
// Raykova, CCS 2020; docs/secure-aggregation.md, "SecAgg+ for large cohorts"). The first
// part of SecAgg+: the sessions' state machines (client.h, server.h) do not use it yet.
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
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::secagg {

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

}  // namespace tessera::secagg

#endif  // TESSERA_SECAGG_NEIGHBOURHOOD_H_
