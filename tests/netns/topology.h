// A small network of Linux network namespaces for the multi-host suite, made and removed by
// the test (`ip netns`, `ip link`, `tc`; needs root):
//
//   tessera-<pid>-coord   eth0 10.A.B.2/24            the coordinator's host
//   tessera-<pid>-s<i>    eth0 10.A.B.(11+i)/24       one host per site
//   tessera-<pid>-net     br0  10.A.B.1/24            the network: a bridge with one veth port
//                                                     per host (coord, s<i>, host); the
//                                                     fault relays run here
//   (the test's own)      tsr<pid> 10.A.B.254/24      one veth leg into the bridge, so that
//                                                     the test (the operator) reaches the
//                                                     coordinator
//
// 10.A.B.0/24 is picked from the test's pid and skipped if any route of the test's namespace
// overlaps it. Nothing else of the test's namespace is touched: the leg is the test's own
// interface, removed with the network namespace. Names carry the pid, so concurrent runs do
// not meet; namespaces left by a run that died (its pid gone) are removed by the next Create.
//
// Not thread-safe; one per test.
#ifndef TESSERA_TESTS_NETNS_TOPOLOGY_H_
#define TESSERA_TESTS_NETNS_TOPOLOGY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::netns {

class Topology {
 public:
  // Builds the namespaces and links for `sites`. FAILED_PRECONDITION with the reason when the
  // machine cannot (not root, no `ip netns`, no veth or bridge support): the caller skips.
  // Any other failure removes what was made and returns INTERNAL with the command's output.
  static absl::StatusOr<std::unique_ptr<Topology>> Create(const std::vector<std::string>& sites);
  // Removes every namespace it made (and with them the veth pairs, the bridge and the leg).
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // `ip netns exec <namespace>`: the words to put before a command to run it there.
  std::vector<std::string> Exec(const std::string& ns) const;

  const std::string& network_ns() const { return network_ns_; }
  const std::string& coordinator_ns() const { return coordinator_ns_; }
  std::string site_ns(const std::string& site) const { return site_ns_.at(site); }
  // Addresses (no prefix length).
  const std::string& network_ip() const { return network_ip_; }
  const std::string& coordinator_ip() const { return coordinator_ip_; }
  std::string site_ip(const std::string& site) const { return site_ip_.at(site); }

  // A token-bucket (tbf) limit of `rate` ("10mbit") on the site's link, both ways: on the
  // site's own end (uploads) and on its bridge port (downloads).
  absl::Status LimitRate(const std::string& site, const std::string& rate);
  // Caps TCP's send and receive buffers of every socket made from now on in namespace `ns`
  // (net.ipv4.tcp_wmem and tcp_rmem: 4 KiB, 16 KiB, `max_bytes`), so that a slow reader
  // holds its data in the sender's process instead of the kernels' buffers, which by
  // default take megabytes at once.
  absl::Status CapSocketBuffers(const std::string& ns, int max_bytes);
  // Brings the site's bridge port down (a cut cable) or up again.
  absl::Status SetLinkUp(const std::string& site, bool up);
  // Bytes the site's link carried so far: sent by the site (tx of its end) and to it (rx).
  struct LinkBytes {
    int64_t from_site = 0;
    int64_t to_site = 0;
  };
  absl::StatusOr<LinkBytes> SiteLinkBytes(const std::string& site);

 private:
  Topology() = default;
  absl::Status Build(const std::vector<std::string>& sites);

  std::vector<std::string> made_;  // namespaces to remove, in order
  std::string network_ns_;
  std::string coordinator_ns_;
  std::map<std::string, std::string> site_ns_;
  std::map<std::string, std::string> site_port_;  // the site's port on the bridge
  std::string network_ip_;
  std::string coordinator_ip_;
  std::map<std::string, std::string> site_ip_;
};

}  // namespace tessera::netns

#endif  // TESSERA_TESTS_NETNS_TOPOLOGY_H_
