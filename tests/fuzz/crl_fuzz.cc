// Fuzz target: certificate revocation lists (crypto/crl.h) on arbitrary PEM text: VerifyCrl
// against the fixed test CA, and a RevocationList offered it (as a site is by whoever
// relays a CRL). A CRL that verifies must be one the list accepts, and each entry it lists
// must be found by its serial.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "crypto/crl.h"
#include "tests/fuzz/secagg_world.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const fuzz::SecAggWorld& world = fuzz::World();
  const std::string pem(reinterpret_cast<const char*>(data), size);
  auto info = crypto::VerifyCrl(pem, world.ca_cert_pem);
  crypto::RevocationList list(world.ca_cert_pem);
  auto offered = list.Offer(pem);
  if (info.ok() != offered.ok()) std::abort();
  if (!info.ok()) return 0;
  for (const crypto::RevokedCertificate& entry : info->revoked) {
    if (*offered && !list.Find(entry.serial_hex).has_value()) std::abort();
  }
  return 0;
}
