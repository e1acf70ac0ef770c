// Fuzz target: certificate, CSR and key parsing (crypto/pki.h, crypto/signature.h) on
// arbitrary PEM text. The first byte picks the entry point; the rest is the PEM:
//   0 ParseCertificate            1 VerifyCertificate against the fixed test CA
//   2 CsrNodeId                   3 SignCsr with the fixed test CA (a CA signing a request)
//   4 Signer::Create (a key)      5 CheckKeyMatchesCertificate (the key against site-00's)
//   6 Verifier::Create (a certificate) and a signature check
// Whatever the text, a clear error or a result; a certificate the CA signs from a request
// must parse and verify.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/files.h"
#include "crypto/pki.h"
#include "crypto/signature.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/secagg_world.h"

namespace {

using namespace tessera;

const crypto::CertificateAuthority& Ca() {
  static const crypto::CertificateAuthority* const ca = [] {
    auto* authority = new crypto::CertificateAuthority;
    auto cert = common::ReadFile(fuzz::FuzzDataDir() + "/ca.crt");
    auto key = common::ReadFile(fuzz::FuzzDataDir() + "/ca.key");
    if (!cert.ok() || !key.ok()) std::abort();
    authority->cert_pem = *std::move(cert);
    authority->key_pem = crypto::SecretBytes(*std::move(key));
    return authority;
  }();
  return *ca;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::SecAggWorld& world = fuzz::World();
  fuzz::FuzzInput in(data, size);
  const uint8_t op = in.Byte() % 7;
  std::string pem(in.Rest());
  switch (op) {
    case 0:
      (void)crypto::ParseCertificate(pem);
      break;
    case 1:
      (void)crypto::VerifyCertificate(pem, world.ca_cert_pem, world.now);
      break;
    case 2:
      (void)crypto::CsrNodeId(pem);
      break;
    case 3: {
      auto cert = crypto::SignCsr(Ca(), pem, crypto::SignOptions(), world.now);
      if (cert.ok() && !crypto::VerifyCertificate(*cert, Ca().cert_pem, world.now).ok()) {
        std::abort();  // the CA issued what it does not accept
      }
      break;
    }
    case 4:
      (void)crypto::Signer::Create(crypto::SecretBytes(std::move(pem)));
      break;
    case 5:
      (void)crypto::CheckKeyMatchesCertificate(crypto::SecretBytes(std::move(pem)),
                                               world.site00_cert_pem);
      break;
    default: {
      auto verifier = crypto::Verifier::Create(pem);
      if (verifier.ok()) (void)verifier->Verify("message", std::string(64, 's'));
      break;
    }
  }
  return 0;
}
