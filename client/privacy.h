// The site's share of central differential privacy under secure aggregation (distributed
// Gaussian noise, as in DP-FedAvg, McMahan et al. 2018, with the noise split over sites).
//
// A FIT vector [w, w*delta] has its weighted update w*delta clipped to L2 norm C, so one
// site's whole contribution to the summed update moves it by at most C (the sensitivity);
// then every coordinate gets Gaussian noise of variance (sigma*C)^2 / t, t being the
// session's threshold. A sum over at least t sites that added their share therefore
// carries noise of standard deviation at least sigma*C — the Gaussian mechanism the
// coordinator's RDP accountant charges for. The weight w itself is not noised (the cohort's
// total share of rows is released as is), and the noise comes from the system's CSPRNG,
// never from the task seed: the coordinator must not be able to subtract it.
//
// Assumption (documented for the data protection officer): the guarantee holds if at least
// t of the summed sites are honest and add their noise; with fewer honest sites the noise
// is proportionally smaller.
#ifndef TESSERA_CLIENT_PRIVACY_H_
#define TESSERA_CLIENT_PRIVACY_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace tessera::v1 {
class PrivacySpec;
}  // namespace tessera::v1

namespace tessera::client {

// Clips values[1..] (the weighted update) to L2 norm spec.clip_norm and adds the site's
// share of noise to each of them; values[0] (the weight) is left as is. INTERNAL if the
// random source fails; INVALID_ARGUMENT for an empty vector or a non-positive threshold.
absl::Status AddPrivacyNoise(const v1::PrivacySpec& spec, uint32_t threshold,
                             std::vector<double>* values);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PRIVACY_H_
