// The certificates of a site's secure-aggregation peers, and the completion of an
// advertisement list that names them by SHA-256 only (protocol version 2,
// KeyAdvertisement.certificate_sha256). A site keeps every certificate it has seen, by its
// digest, up to a byte budget, so that after its first session with a cohort it fetches
// only the certificates of sites it has not met (Federation.FetchCertificates); a list of n
// sites then costs it about 225 bytes a site instead of 960 (a `tessera pki` certificate is
// about 730 bytes of PEM).
//
// Nothing here is trusted because of where it came from: a certificate is kept only if it
// hashes to the digest it was asked for, and the secure-aggregation state machine checks
// every certificate it uses (federation CA, name, role, CRL) as before. A certificate that
// could not be had leaves its entry without one; the state machine then refuses the entry,
// naming the site (SECAGG_UNTRUSTED_CERTIFICATE), so the site declines the session with a
// reason rather than failing silently.
//
// Thread-compatible: one per site agent, one caller.
#ifndef TESSERA_CLIENT_PEER_CERTIFICATES_H_
#define TESSERA_CLIENT_PEER_CERTIFICATES_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/federation.pb.h"

namespace tessera::client {

// One FetchCertificates call: the PEMs for `sha256s` (at most proto::kMaxCertificatesPerFetch),
// in that order. Its error is the transport's (or the coordinator's refusal).
using FetchCertificatesCall = std::function<absl::StatusOr<std::vector<std::string>>(
    const std::vector<std::string>& sha256s)>;

// The FetchCertificates request for `sha256s` of `item`'s session.
v1::FetchCertificatesRequest FetchRequestFor(const v1::WorkItem& item,
                                             const std::vector<std::string>& sha256s);

// The PEMs of a FetchCertificates response, in order.
std::vector<std::string> FetchedCertificates(const v1::FetchCertificatesResponse& response);

// What Complete did, for the log and the tests.
struct CompletedList {
  size_t from_cache = 0;  // entries completed from certificates held
  size_t fetched = 0;     // entries completed from certificates fetched now
  // Entries left without a certificate: the coordinator sent one that does not hash to the
  // entry's digest (named here: "<client id>", at most a few), or none.
  std::vector<std::string> refused;
};

class PeerCertificates {
 public:
  // Keeps at most `max_bytes` of PEM (the oldest go first): 16 MiB is ~22,000 certificates.
  static constexpr size_t kDefaultMaxBytes = size_t{16} << 20;
  explicit PeerCertificates(size_t max_bytes = kDefaultMaxBytes) : max_bytes_(max_bytes) {}

  // Keeps `pem` (e.g. the site's own certificate) under its SHA-256.
  void Add(const std::string& pem);
  // The certificate with SHA-256 `sha256`, or null. Valid until the next Add or Complete.
  const std::string* Find(const std::string& sha256) const;
  size_t size() const { return by_digest_.size(); }

  // Completes `item`'s advertisement list, if it carries one whose entries lack their
  // certificates: from the certificates held, then from `fetch` for the rest (in calls of
  // at most proto::kMaxCertificatesPerFetch digests), keeping each fetched certificate that
  // hashes to its digest. Does nothing to any other item. A `fetch` error is returned as is
  // and changes nothing in `item` (the daemon reconnects and is handed the item again);
  // the certificates fetched by earlier calls are kept.
  absl::StatusOr<CompletedList> Complete(v1::WorkItem* item, const FetchCertificatesCall& fetch);

 private:
  const size_t max_bytes_;
  size_t bytes_ = 0;
  std::map<std::string, std::string> by_digest_;  // SHA-256 -> PEM
  std::deque<std::string> order_;                 // digests, oldest first
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_PEER_CERTIFICATES_H_
