// `tessera-client renew --config FILE`: a new key and CSR for this site, next to the
// current certificate, while the current one keeps working (docs/pki.md, "Renewing").
#ifndef TESSERA_CLIENT_CLI_RENEW_H_
#define TESSERA_CLIENT_CLI_RENEW_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tessera::client {

// Writes <cert without .crt>.renew.key (0600) and .renew.csr for the node id of the
// config's current certificate. Never overwrites (ALREADY_EXISTS naming the file).
absl::Status RenewCommand(const std::vector<std::string>& args);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_CLI_RENEW_H_
