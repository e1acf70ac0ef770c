// gRPC transport security for Tessera: TLS 1.3 only, certificates on both sides, all
// from the federation CA. The one place that turns PKI material into gRPC credentials and
// reads a caller's identity back from the TLS peer.
//
// Thread-safe. gRPC types are only forward-declared here.
#ifndef TESSERA_CRYPTO_TLS_H_
#define TESSERA_CRYPTO_TLS_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/pki.h"
#include "crypto/secret.h"

namespace grpc {
class AuthContext;
class Channel;
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace tessera::v1 {
class TlsFiles;
}  // namespace tessera::v1

namespace tessera::crypto {

// Largest gRPC message cap a config may set (CoordinatorConfig / ClientConfig
// max_message_bytes).
inline constexpr int kMaxMessageBytes = 512 * 1024 * 1024;
// The default cap on one gRPC message, each way, on the coordinator's server and on every
// channel: 8 MiB holds a work item or a masked input of a model of about 2 million
// parameters (coordinator/limits.h refuses a larger task at submission). A message above
// the cap is refused with RESOURCE_EXHAUSTED.
inline constexpr int kDefaultMaxMessageBytes = 8 * 1024 * 1024;

// A node's TLS identity, loaded and checked.
struct TlsMaterial {
  std::string ca_cert_pem;
  std::string cert_pem;
  SecretBytes key_pem;
  CertificateInfo identity;  // of cert_pem, verified against the CA
};

// Reads the three files and checks, with errors naming the file: the key file's mode
// (FAILED_PRECONDITION unless 0600 or stricter), the certificate chains to the CA and is
// valid at `now` (UNAUTHENTICATED), the key matches the certificate, and the certificate
// has role `want_role` (PERMISSION_DENIED).
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const v1::TlsFiles& files, Role want_role,
                                            absl::Time now);

// Server credentials: TLS 1.3 only; client certificate required and verified against
// the CA. If TLS 1.3 cannot be enforced (RequireTls13ForProcess fails) the process aborts
// rather than serve older versions; call RequireTls13ForProcess at start-up to get that
// error as a status instead.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsMaterial& material);

// Decides at the TLS handshake whether a client certificate (already verified against the
// CA, in its validity period) may connect: a non-OK status refuses the handshake. Called on
// gRPC's threads; must be thread-safe and quick (no I/O).
using HandshakeAdmission = std::function<absl::Status(const CertificateInfo& client)>;
// As above, plus `admit` for every client certificate (revocation: docs/pki.md). Uses
// gRPC's TLS credentials API (a certificate verifier run after the chain check); the
// same TLS 1.3-only rule applies.
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsMaterial& material,
                                                               HandshakeAdmission admit);

// How a channel connects and reconnects. gRPC's own backoff (1 s, growing to 120 s) would
// make a site wait minutes after a long outage.
struct ChannelOptions {
  // The pause after the first failed connection attempt, growing 1.6× per failure up to
  // the maximum.
  absl::Duration initial_reconnect_backoff = absl::Milliseconds(250);
  absl::Duration max_reconnect_backoff = absl::Seconds(10);
  // The least time one attempt (TCP, TLS 1.3 handshake, HTTP/2 settings) is given before it
  // is abandoned, whatever the backoff. gRPC names this GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
  // it once held the 250 ms backoff here, and a link slower than that to handshake made
  // attempt after attempt fail (TlsTest.ASlowLinkConnectsOnTheFirstAttempt).
  absl::Duration connect_timeout = absl::Seconds(20);
  // Largest message the channel sends or receives, in bytes (1 MiB..kMaxMessageBytes).
  int max_message_bytes = kDefaultMaxMessageBytes;
};

// A channel to `address` presenting `material`'s certificate and verifying the server's
// against the CA. `server_name` is the name checked in the server certificate's SANs;
// empty means the host part of `address`.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::string& server_name,
                                           const TlsMaterial& material,
                                           const ChannelOptions& options = {});

// The verified identity of the peer of a server call, parsed from the certificate gRPC
// verified during the handshake. UNAUTHENTICATED if the call carries no certificate.
absl::StatusOr<CertificateInfo> PeerIdentity(const grpc::AuthContext& auth_context);

// Disables every TLS version below 1.3 for every OpenSSL context this process creates
// from now on (gRPC 1.51 has no public knob for it). Idempotent; MakeServerCredentials
// and MakeChannel call it. Returns INTERNAL if OpenSSL refused the configuration.
// Mechanism: loads an in-memory OpenSSL config whose ssl_conf system_default section says
// "Protocol = -ALL, TLSv1.3", which every later SSL_CTX_new applies as SSL_OP_NO_* bits.
// Call it early, before other threads make TLS contexts, and do not load another OpenSSL
// config afterwards (it would replace the system_default section).
absl::Status RequireTls13ForProcess();

// Tells OpenSSL not to tear itself down at exit (OPENSSL_INIT_NO_ATEXIT). By default
// OpenSSL frees its global state and deletes its thread-local keys in an atexit handler,
// while gRPC's threads may still be running: a thread that then uses OpenSSL (a reconnect's
// handshake) finds it torn down, and one that ends afterwards never frees what OpenSSL kept
// for it (LeakSanitizer reported those at a site daemon's exit). The operating system
// reclaims the memory at exit anyway. Call it first thing in a daemon's main(), before
// anything else uses OpenSSL (the first initialization decides); INTERNAL if OpenSSL
// refused.
absl::Status KeepOpenSslUntilExit();

// The GRPC_EXPERIMENTS value that keeps a gRPC server's per-connection read buffers small,
// given the one in the environment (`current`, perhaps empty). gRPC 1.51 (Debian 12) reads
// by default ("tcp_read_chunks") into as many 64 KiB blocks as the connection's recent reads
// suggest, whatever GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE says, and keeps the part a read did not
// fill for the next one: a connection that carried a masked input or a model keeps up to
// megabytes while it idles in a long-poll, and a coordinator's memory grows with its sites
// (docs/performance.md, "gRPC's read buffers"). "-tcp_read_chunks" is appended unless
// `current` already names tcp_read_chunks (an operator's choice, kept). Pure.
std::string GrpcExperimentsWithSmallReads(std::string_view current);

// Sets GRPC_EXPERIMENTS to GrpcExperimentsWithSmallReads of its value. Call it in main(),
// before any thread starts (it changes the environment) and before gRPC is used (gRPC reads
// the variable once).
void KeepGrpcReadBuffersSmall();

}  // namespace tessera::crypto

#endif  // TESSERA_CRYPTO_TLS_H_
