// Who may talk to the coordinator, decided at the TLS handshake and again at every call
// (docs/pki.md): the certificate must not have expired or been revoked by the federation's
// CRL, and an institution's identity is bound to one live daemon at a time.
//
// The CRL comes from a file (CoordinatorConfig.crl_file) written by `tessera pki revoke`:
// read at start (LoadCrl: a bad CRL is an error naming the file) and re-read when it
// changes (ReloadCrl: a bad new CRL is logged and refused, the old one kept).
//
// Instance binding. Every daemon picks a random instance id at start and sends it with
// Hello and every call. The first instance to call binds the identity; a call from another
// instance is refused with ALREADY_EXISTS while the bound one is live: it has a PullWork
// open, or it called within `instance_liveness`. A healthy daemon always has a long-poll
// open except while it computes an answer. A daemon that stops or dies cancels its open
// long-poll: when that call ends the identity is free at once; a daemon that dies while
// computing frees it `instance_liveness` after its last call. Calls without an instance id
// (tools and tests that speak the protocol directly) are not bound.
//
// Thread-safe.
#ifndef TESSERA_COORDINATOR_ACCESS_CONTROL_H_
#define TESSERA_COORDINATOR_ACCESS_CONTROL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "crypto/crl.h"
#include "crypto/pki.h"

namespace tessera::coordinator {

struct AccessControlOptions {
  std::string ca_cert_pem;
  // CoordinatorConfig.crl_file; empty: nothing is revoked.
  std::string crl_file;
  // How long a bound daemon instance stays live after its last call.
  absl::Duration instance_liveness = absl::Seconds(10);
  // Certificates expiring within this are warned about (once per identity per day).
  absl::Duration expiry_warning = absl::Hours(24 * 30);
};

class AccessControl {
 public:
  AccessControl(const common::Clock* clock, AccessControlOptions options);

  // Reads crl_file (no-op without one). Errors name the file.
  absl::Status LoadCrl();
  // Re-reads crl_file when its modification time or size changed, or always if `force`
  // (SIGHUP). Returns the entries the new CRL adds; a refused CRL is logged
  // ("crl_refused") and changes nothing.
  std::vector<crypto::RevokedCertificate> ReloadCrl(bool force);

  // UNAUTHENTICATED naming the certificate if it expired ("certificate of X expired at …")
  // or is revoked. Logs the expiry warning when due.
  absl::Status CheckCertificate(const crypto::CertificateInfo& info);

  // Binds `client_id` to `instance_id` or refuses: ALREADY_EXISTS naming the identity, the
  // address and start of the live daemon that holds it, and what to do. `peer` is the
  // caller's address. An empty instance id is not bound (OK).
  absl::Status BindInstance(const std::string& client_id, const std::string& instance_id,
                            const std::string& peer);
  // A PullWork of the bound instance began / ended (it is live while one is open).
  void PullStarted(const std::string& client_id, const std::string& instance_id);
  // `cancelled`: the caller gave up the call (the daemon stopped or died: its connection
  // closed), which frees the identity at once.
  void PullEnded(const std::string& client_id, const std::string& instance_id, bool cancelled);
  // Forgets the binding (the identity was revoked or disabled).
  void Unbind(const std::string& client_id);

  // The held CRL (PEM, "" if none), handed to the sites.
  std::string crl_pem() const { return crl_.pem(); }
  const crypto::RevocationList& crl() const { return crl_; }

 private:
  struct Binding {
    std::string instance_id;
    std::string peer;
    absl::Time since;
    absl::Time last_call;
    int open_pulls = 0;
  };
  struct FileStamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
  };
  absl::StatusOr<FileStamp> Stamp() const;
  absl::Status ReadCrlFile(bool* replaced);
  void MaybeWarnExpiry(const crypto::CertificateInfo& info, absl::Time now);

  const common::Clock* const clock_;
  const AccessControlOptions options_;
  crypto::RevocationList crl_;

  mutable absl::Mutex mu_;
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Binding> bindings_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Time> expiry_warned_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_ACCESS_CONTROL_H_
