// The site's view of revocation (docs/pki.md): the newest CRL of the federation CA it has
// seen, from the coordinator (HelloResponse and every work item) or from its own
// ClientConfig.crl_file. Every CRL is checked with the federation CA before it is taken, so
// the coordinator can withhold a newer CRL but cannot forge, alter or roll one back: the
// site keeps the one with the highest CRL number, also across restarts (it is kept in
// <data_dir>/crl.pem). Secure aggregation refuses a peer whose certificate it lists
// (secagg::ClientIdentity::revocations).
//
// Thread-safe.
#ifndef TESSERA_CLIENT_SITE_CRL_H_
#define TESSERA_CLIENT_SITE_CRL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "crypto/crl.h"

namespace tessera::client {

class SiteCrl {
 public:
  // Loads <data_dir>/crl.pem (the newest seen before; a damaged one is logged and ignored)
  // and `crl_file` if set (an error naming the file if it does not verify with the CA).
  static absl::StatusOr<std::unique_ptr<SiteCrl>> Open(const std::string& ca_cert_pem,
                                                       const std::string& data_dir,
                                                       const std::string& crl_file);

  // Offers a CRL received from `from` ("coordinator", "crl_file"). Empty: nothing. A CRL
  // that does not verify is logged ("crl_refused") and changes nothing; a newer one is
  // kept, persisted and logged ("crl_updated"). Returns true if it replaced the held one.
  bool Offer(const std::string& pem, const char* from);
  // Re-reads crl_file (SIGHUP).
  void ReloadFile();

  const crypto::RevocationList* list() const { return &list_; }

 private:
  SiteCrl(const std::string& ca_cert_pem, std::string persisted, std::string crl_file)
      : list_(ca_cert_pem), persisted_(std::move(persisted)), crl_file_(std::move(crl_file)) {}

  crypto::RevocationList list_;
  const std::string persisted_;
  const std::string crl_file_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_SITE_CRL_H_
