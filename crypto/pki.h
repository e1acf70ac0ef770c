// The federation's PKI, with OpenSSL's C API (never the `openssl` command).
//
// One CA per federation. Every node has a key pair made where it runs (the private key
// never leaves the site) and a certificate the operator signs from its CSR. The
// certificate subject is CN=<node id>, OU=<role>, O=<federation name>; the signer sets
// OU and O itself and ignores whatever the CSR asked for, so an institution cannot
// request the operator role. Keys are ECDSA P-256; signatures SHA-256.
//
// All functions are thread-safe. PEM strings cross this API; no OpenSSL type does.
// Error codes: INVALID_ARGUMENT for malformed input (bad PEM, bad name, CSR whose
// signature does not verify), FAILED_PRECONDITION / PERMISSION_DENIED / UNAUTHENTICATED as
// documented per function, INTERNAL for OpenSSL failures.
#ifndef TESSERA_CRYPTO_PKI_H_
#define TESSERA_CRYPTO_PKI_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret.h"

namespace tessera::crypto {

enum class Role {
  kInstitution,  // runs tessera-client; may call the federation service only
  kOperator,     // runs the tessera console; may call the admin service
  kCoordinator,  // the coordinator's server certificate
};

// "institution", "operator", "coordinator".
const char* RoleName(Role role);
// INVALID_ARGUMENT naming the accepted values for anything else.
absl::StatusOr<Role> ParseRole(const std::string& name);

// A node id (certificate CN): 1..64 characters from [A-Za-z0-9._-].
bool IsValidNodeId(const std::string& id);

// A fresh ECDSA P-256 private key as PKCS#8 PEM.
absl::StatusOr<SecretBytes> GeneratePrivateKey();

struct CertificateAuthority {
  SecretBytes key_pem;
  std::string cert_pem;
};
// A self-signed CA certificate for `federation_name` (1..64 printable characters),
// valid from `now` - 5 minutes for `validity_days`.
absl::StatusOr<CertificateAuthority> CreateCertificateAuthority(const std::string& federation_name,
                                                                int validity_days, absl::Time now);

// A PEM certificate signing request for `node_id`, signed with `key_pem`.
absl::StatusOr<std::string> CreateCsr(const SecretBytes& key_pem, const std::string& node_id);

struct SignOptions {
  Role role = Role::kInstitution;
  int validity_days = 365;
  // Subject alternative names for a coordinator certificate: DNS names or IP addresses
  // (IPv4/IPv6 literals become IP entries). INVALID_ARGUMENT if set for other roles.
  std::vector<std::string> subject_alt_names;
};
// Verifies the CSR's self-signature and node id, then issues a certificate signed by
// the CA with a random 128-bit serial, valid from `now` - 5 minutes.
absl::StatusOr<std::string> SignCsr(const CertificateAuthority& ca, const std::string& csr_pem,
                                    const SignOptions& options, absl::Time now);

struct CertificateInfo {
  std::string node_id;  // subject CN
  Role role = Role::kInstitution;
  std::string federation;       // subject O
  std::string fingerprint_hex;  // SHA-256 of the DER certificate, lowercase hex
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
};

// Parses a certificate without checking who signed it (for a peer gRPC already
// verified). INVALID_ARGUMENT if malformed or if CN/OU do not name a node id and role.
// What a certificate that parsed gives is remembered per process (the result depends on
// its bytes only), so the identity of a caller read on each call costs a digest, not a parse.
absl::StatusOr<CertificateInfo> ParseCertificate(const std::string& cert_pem);

// Parses and verifies `cert_pem` against the federation CA at time `now`:
// UNAUTHENTICATED "... certificate has expired (not after ...)" / "... not yet valid" /
// "... not signed by the federation CA"; INVALID_ARGUMENT if malformed.
// A certificate that verified is remembered per process with the span in which both it and
// the CA are valid: the same question with `now` inside that span is answered without
// parsing or checking again (what a secure-aggregation session asks about every peer).
// Refusals are never remembered. Revocation is not part of this check (crypto/crl.h).
absl::StatusOr<CertificateInfo> VerifyCertificate(const std::string& cert_pem,
                                                  const std::string& ca_cert_pem, absl::Time now);

// The certificate of `cert_pem` (its first) as OpenSSL writes it: base64 in lines of 64,
// padding bits zero, one header and footer. Two PEM texts of the same certificate give the
// same string. INVALID_ARGUMENT if `cert_pem` is not a PEM certificate.
absl::StatusOr<std::string> CanonicalCertificatePem(const std::string& cert_pem);

// PERMISSION_DENIED "<node> has role <r>, <want> required" unless info.role == want.
absl::Status RequireRole(const CertificateInfo& info, Role want);

// FAILED_PRECONDITION unless `key_pem` is the private key of `cert_pem`.
absl::Status CheckKeyMatchesCertificate(const SecretBytes& key_pem, const std::string& cert_pem);

// Parses the CSR and returns the node id it asks for (for showing before signing).
absl::StatusOr<std::string> CsrNodeId(const std::string& csr_pem);

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_PKI_H_
