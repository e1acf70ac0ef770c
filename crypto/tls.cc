// Transport choice: gRPC's long-standing SSL credentials (grpc::SslServerCredentials with
// GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, grpc::SslCredentials on the
// client). They do everything Tessera needs — the chain is checked against the federation
// CA alone (no system roots), the client must present a certificate, the client checks
// the server's SANs against the target name — and, unlike the experimental TLS API of
// gRPC 1.51, their behaviour is stable across releases.
//
// TLS 1.3 only: gRPC 1.51 calls SSL_CTX_set_min_proto_version(TLS1_2) on every context it
// makes and offers no knob to change that. OpenSSL's SSL_CONF "Protocol" command, however,
// sets SSL_OP_NO_TLSv1_2-style option bits, which OpenSSL honours on top of (and
// regardless of) the minimum version, and gRPC only ever adds option bits. SSL_CTX_new
// applies the ssl_conf "system_default" section to every new context, so loading a config
// whose system_default says "Protocol = -ALL, TLSv1.3" before gRPC makes its contexts
// disables everything below TLS 1.3 for the whole process. RequireTls13ForProcess loads
// that config from memory and then checks on a fresh context that it took effect.
#include "crypto/tls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "crypto/internal/openssl_util.h"
#include "proto/config.pb.h"

namespace tessera::crypto {
namespace {

using internal::MemoryBio;
using internal::OpenSslInternal;
using internal::UniqueBio;
using internal::UniqueConf;
using internal::UniqueSslCtx;

// The config module name is looked up in the default section: "tessera_tls13 = <section>".
constexpr char kConfigAppName[] = "tessera_tls13";
constexpr char kTls13Config[] = R"(tessera_tls13 = tessera_tls13_modules

[tessera_tls13_modules]
ssl_conf = tessera_tls13_ssl

[tessera_tls13_ssl]
system_default = tessera_tls13_system_default

[tessera_tls13_system_default]
# Option bits (SSL_OP_NO_*): survive gRPC's SSL_CTX_set_min_proto_version(TLS1_2).
Protocol = -ALL, TLSv1.3
MinProtocol = TLSv1.3
# Debian's own system_default, which this section replaces.
CipherString = DEFAULT:@SECLEVEL=2
)";

constexpr uint64_t kBelowTls13 =
    SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;

absl::Status LoadTls13Config() {
  // Load the distribution's config first (a once-only step in OpenSSL): were it to run
  // after ours, its system_default section would replace ours.
  if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
    return OpenSslInternal("cannot initialise OpenSSL");
  }
  UniqueConf conf(NCONF_new(nullptr));
  UniqueBio bio = MemoryBio(kTls13Config);
  long error_line = 0;  // NOLINT(runtime/int): OpenSSL's type
  if (conf == nullptr || bio == nullptr ||
      NCONF_load_bio(conf.get(), bio.get(), &error_line) != 1) {
    return OpenSslInternal(absl::StrCat("cannot parse the TLS 1.3 config (line ", error_line, ")"));
  }
  if (CONF_modules_load(conf.get(), kConfigAppName, 0) <= 0) {
    return OpenSslInternal("OpenSSL refused the TLS 1.3 config");
  }
  // Check on a context made the way gRPC makes its own that the config took effect.
  UniqueSslCtx ctx(SSL_CTX_new(TLS_method()));
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return OpenSslInternal("cannot make a TLS context");
  }
  const uint64_t options = SSL_CTX_get_options(ctx.get());
  if ((options & kBelowTls13) != kBelowTls13 || (options & SSL_OP_NO_TLSv1_3) != 0) {
    return absl::InternalError(
        "the TLS 1.3 config loaded but new TLS contexts still allow older versions");
  }
  return absl::OkStatus();
}

// MakeServerCredentials and MakeChannel cannot return a status; serving or dialling with
// TLS 1.2 allowed would silently break the security contract, so they stop the process.
void RequireTls13OrDie() {
  absl::Status status = RequireTls13ForProcess();
  if (status.ok()) return;
  common::LogError("tls13_unavailable").With("error", std::string(status.message()));
  std::fprintf(stderr, "tessera: cannot restrict TLS to version 1.3: %s\n",
               std::string(status.message()).c_str());
  std::abort();
}

void WipeString(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// Runs the admission decision on each client certificate gRPC verified at the handshake.
class AdmissionVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit AdmissionVerifier(HandshakeAdmission admit) : admit_(std::move(admit)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    absl::StatusOr<CertificateInfo> info = ParseCertificate(std::string(pem.data(), pem.size()));
    absl::Status verdict = info.ok() ? admit_(*info) : info.status();
    if (!verdict.ok()) {
      common::LogWarning("handshake_refused")
          .With("peer", info.ok() ? info->node_id : std::string("?"))
          .With("error", std::string(verdict.message()));
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(verdict.message()));
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;  // decided synchronously
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const HandshakeAdmission admit_;
};

}  // namespace

absl::Status RequireTls13ForProcess() {
  // Once per process; every later call returns the first outcome.
  static const absl::Status status = LoadTls13Config();
  return status;
}

absl::Status KeepOpenSslUntilExit() {
  if (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr) != 1) {
    return OpenSslInternal("cannot initialise OpenSSL");
  }
  return absl::OkStatus();
}

std::string GrpcExperimentsWithSmallReads(std::string_view current) {
  // Debian's abseil has its own string_view.
  const absl::string_view value(current.data(), current.size());
  constexpr absl::string_view kExperiment = "tcp_read_chunks";
  for (absl::string_view entry : absl::StrSplit(value, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (absl::ConsumePrefix(&entry, "-")) entry = absl::StripLeadingAsciiWhitespace(entry);
    if (entry == kExperiment) return std::string(value);
  }
  if (absl::StripAsciiWhitespace(value).empty()) return absl::StrCat("-", kExperiment);
  return absl::StrCat(value, ",-", kExperiment);
}

void KeepGrpcReadBuffersSmall() {
  const char* current = std::getenv("GRPC_EXPERIMENTS");
  const std::string value = GrpcExperimentsWithSmallReads(current == nullptr ? "" : current);
  setenv("GRPC_EXPERIMENTS", value.c_str(), /*overwrite=*/1);
}

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const v1::TlsFiles& files, Role want_role,
                                            absl::Time now) {
  if (files.ca_cert().empty()) return absl::InvalidArgumentError("tls.ca_cert is required");
  if (files.cert().empty()) return absl::InvalidArgumentError("tls.cert is required");
  if (files.key().empty()) return absl::InvalidArgumentError("tls.key is required");

  TlsMaterial material;
  ASSIGN_OR_RETURN(material.ca_cert_pem, common::ReadFile(files.ca_cert()));
  ASSIGN_OR_RETURN(material.cert_pem, common::ReadFile(files.cert()));
  // The mode check names the file and tells how to fix it.
  RETURN_IF_ERROR(common::CheckPrivateFileMode(files.key()));
  {
    ASSIGN_OR_RETURN(std::string key, common::ReadFile(files.key()));
    material.key_pem = SecretBytes(std::move(key));
  }

  absl::StatusOr<CertificateInfo> identity =
      VerifyCertificate(material.cert_pem, material.ca_cert_pem, now);
  if (!identity.ok()) {
    return common::Annotate(identity.status(), absl::StrCat("certificate ", files.cert(), " (CA ",
                                                            files.ca_cert(), ")"));
  }
  absl::Status match = CheckKeyMatchesCertificate(material.key_pem, material.cert_pem);
  if (!match.ok()) {
    return common::Annotate(
        match, absl::StrCat("private key ", files.key(), " and certificate ", files.cert()));
  }
  RETURN_IF_ERROR(common::Annotate(RequireRole(*identity, want_role),
                                   absl::StrCat("certificate ", files.cert())));
  material.identity = *std::move(identity);
  return material;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsMaterial& material) {
  RequireTls13OrDie();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = material.ca_cert_pem;
  options.pem_key_cert_pairs.push_back({std::string(material.key_pem.view()), material.cert_pem});
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  // gRPC keeps its own copy; ours goes now.
  WipeString(options.pem_key_cert_pairs.front().private_key);
  return credentials;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsMaterial& material,
                                                               HandshakeAdmission admit) {
  if (!admit) return MakeServerCredentials(material);
  RequireTls13OrDie();
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
  pairs.push_back({std::string(material.key_pem.view()), material.cert_pem});
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      material.ca_cert_pem, pairs);
  WipeString(pairs.front().private_key);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<AdmissionVerifier>(std::move(admit)));
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::string& server_name,
                                           const TlsMaterial& material,
                                           const ChannelOptions& channel_options) {
  RequireTls13OrDie();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = material.ca_cert_pem;
  options.pem_private_key = std::string(material.key_pem.view());
  options.pem_cert_chain = material.cert_pem;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(options);
  WipeString(options.pem_private_key);

  grpc::ChannelArguments args;
  // Without an override gRPC checks the host part of `address` against the SANs.
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  // Work items carry the whole model: the cap is the largest the federation allows.
  const int cap = std::clamp(channel_options.max_message_bytes, 1 << 20, kMaxMessageBytes);
  args.SetMaxReceiveMessageSize(cap);
  args.SetMaxSendMessageSize(cap);
  // Long-polling clients keep their connection alive through NATs and firewalls; the
  // coordinator permits these pings (coordinator/server.cc).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  const int initial_backoff_ms =
      static_cast<int>(absl::ToInt64Milliseconds(channel_options.initial_reconnect_backoff));
  const int max_backoff_ms =
      static_cast<int>(std::max(absl::ToInt64Milliseconds(channel_options.max_reconnect_backoff),
                                static_cast<int64_t>(initial_backoff_ms)));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, initial_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  // Despite its name, gRPC's "min reconnect backoff" is the least time a connection
  // attempt is given (its deadline is the later of this and the next backoff).
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(channel_options.connect_timeout)));
  return grpc::CreateCustomChannel(address, credentials, args);
}

absl::StatusOr<CertificateInfo> PeerIdentity(const grpc::AuthContext& auth_context) {
  if (!auth_context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the caller is not authenticated by TLS");
  }
  std::vector<grpc::string_ref> pems = auth_context.FindPropertyValues("x509_pem_cert");
  if (pems.empty()) {
    return absl::UnauthenticatedError("the caller presented no certificate");
  }
  absl::StatusOr<CertificateInfo> info =
      ParseCertificate(std::string(pems.front().data(), pems.front().size()));
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the caller's certificate names no Tessera node: ", info.status().message()));
  }
  return info;
}

}  // namespace tessera::crypto
