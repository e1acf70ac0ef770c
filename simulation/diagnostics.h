// Warnings about a training task that a researcher should read before trusting its
// metrics, from what `tessera simulate` and `tessera tasks show` both have: the spec, the
// committed rounds and (simulate only) the sites' row counts. Pure; thread-safe.
//
//   client drift   local_epochs > 1 and the evaluation loss ended above its best round's by
//                  more than 2% after rising in the last two evaluated rounds: the sites'
//                  local optima pull the model apart (typical under a skewed partition).
//                  Fewer local epochs, FedProx (training.proximal_mu) or a smaller learning
//                  rate help. (The loss is the evaluation rows'; a task holds no separate
//                  validation rows yet.)
//   small sites    a site with fewer training rows than max(10, the model's parameters):
//                  its update is mostly noise and its share of the pooled statistics tiny —
//                  with a by-column partition, bin the column (by-quantile) or choose another.
#ifndef TESSERA_SIMULATION_DIAGNOSTICS_H_
#define TESSERA_SIMULATION_DIAGNOSTICS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "proto/state.pb.h"
#include "proto/task.pb.h"

namespace tessera::simulation {

// The client-drift warning for `rounds` (any order; round 0 and rounds without a "loss"
// metric are skipped), or none.
std::vector<std::string> DriftWarnings(const v1::TaskSpec& spec,
                                       const std::vector<v1::RoundRecord>& rounds);

// One warning naming the sites (site-01 .. in `site_train_rows`' order) that are small.
std::vector<std::string> SmallSiteWarnings(const v1::TaskSpec& spec,
                                           const std::vector<size_t>& site_train_rows);

}  // namespace tessera::simulation

#endif  // TESSERA_SIMULATION_DIAGNOSTICS_H_
