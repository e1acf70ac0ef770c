// The coordinator's privacy accountant: the RDP math of dp/rdp.h (moved there so that the
// sites' own budgets use the same code), under the names the round driver uses, and the
// contract by which the round driver charges a task's releases.
//
// A task's privacy ledger. Every noised sum the coordinator can unmask is one release
// (dp/rdp.h, "Releases": a model-update sum at σ = PrivacySpec.noise_multiplier, with
// evaluation noise an evaluation sum at σ = PrivacySpec.evaluation_noise_multiplier, a
// noised analytics answer at σ = PrivacySpec.noise_multiplier); exact releases are not
// charged. The task's ε composes every charged release with EpsilonOfReleases.
// Charging contract (for the round driver, which keeps the ledger: one σ per release,
// in order). A release is charged durably in the task's ledger before the unmasking step
// of its session is posted, and stays charged whatever happens next (the session fails,
// the attempt is retried, the coordinator crashes and resumes): ε counts every sum the
// coordinator could have unmasked. Before starting a stage the driver checks that the ε
// after that stage's release (EpsilonAfterNextRelease) stays within epsilon_budget.
//
// Pure, like dp/rdp.h.
#ifndef TESSERA_COORDINATOR_PRIVACY_ACCOUNTANT_H_
#define TESSERA_COORDINATOR_PRIVACY_ACCOUNTANT_H_

#include "dp/rdp.h"

namespace tessera::coordinator {

using dp::DefaultRdpOrders;
using dp::EpsilonAfterNextRelease;
using dp::EpsilonOfReleases;
using dp::GaussianEpsilon;
using dp::NextReleaseEpsilon;
using dp::RdpAccountant;
using dp::RdpConversion;
using dp::SampledGaussianRdp;

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_PRIVACY_ACCOUNTANT_H_
