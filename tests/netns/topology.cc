#include "tests/netns/topology.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "tests/e2e/process.h"

namespace tessera::netns {
namespace {

constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kTc[] = "/usr/sbin/tc";
constexpr char kSysctl[] = "/usr/sbin/sysctl";
constexpr char kPrefix[] = "tessera-";

// Runs a command that must succeed; INTERNAL with its output otherwise.
absl::StatusOr<std::string> Run(const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(e2e::CommandResult r, e2e::RunCommand(argv, absl::Seconds(30)));
  if (r.status.Succeeded()) return r.out;
  return absl::InternalError(
      absl::StrCat(absl::StrJoin(argv, " "), ": ", r.status.ToString(), ": ", r.err, r.out));
}

// Whether `pid` runs (a zombie no parent reaps does not).
bool Alive(int pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const std::string stat = e2e::ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || stat.compare(paren, 3, ") Z") != 0;
}

// Removes namespaces "tessera-<pid>-..." whose pid is no longer running (a run that was
// killed before its destructor ran, SIGKILL or a power cut), after killing the daemons and
// relays that run left in them (`ip netns pids`): they hold a namespace, and with it the
// test's leg, alive.
void RemoveStaleNamespaces() {
  absl::StatusOr<std::string> list = Run({kIp, "netns", "list"});
  if (!list.ok()) return;
  for (absl::string_view line : absl::StrSplit(*list, '\n', absl::SkipEmpty())) {
    const std::string name(line.substr(0, line.find(' ')));
    if (!absl::StartsWith(name, kPrefix)) continue;
    std::vector<std::string> parts = absl::StrSplit(name, '-');
    int pid = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &pid) || pid <= 0) continue;
    if (Alive(pid)) continue;
    absl::StatusOr<std::string> pids = Run({kIp, "netns", "pids", name});
    for (absl::string_view p : absl::StrSplit(pids.ok() ? *pids : "", '\n', absl::SkipEmpty())) {
      int left = 0;
      if (absl::SimpleAtoi(p, &left) && left > 1) kill(left, SIGKILL);
    }
    (void)Run({kIp, "netns", "del", name});
  }
}

uint32_t ParseIpv4(absl::string_view text) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(text).c_str(), &a) != 1) return 0;
  return ntohl(a.s_addr);
}

// Whether any IPv4 route of the test's own namespace overlaps `net`/24.
bool Overlaps(uint32_t net, const std::string& routes) {
  for (absl::string_view line : absl::StrSplit(routes, '\n', absl::SkipEmpty())) {
    const absl::string_view dest = line.substr(0, line.find(' '));
    if (dest == "default") continue;
    std::vector<absl::string_view> parts = absl::StrSplit(dest, '/');
    int len = 32;
    if (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &len)) continue;
    const uint32_t addr = ParseIpv4(parts[0]);
    const int common = std::min(len, 24);
    const uint32_t mask = common == 0 ? 0 : ~uint32_t{0} << (32 - common);
    if ((addr & mask) == (net & mask)) return true;
  }
  return false;
}

std::string Ipv4(uint32_t a) {
  return absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".", a & 255);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Topology>> Topology::Create(const std::vector<std::string>& sites) {
  if (geteuid() != 0) {
    return absl::FailedPreconditionError("network namespaces need root (`ip netns add`)");
  }
  if (access(kIp, X_OK) != 0 || access(kTc, X_OK) != 0) {
    return absl::FailedPreconditionError("iproute2 (/usr/sbin/ip, /usr/sbin/tc) is not installed");
  }
  RemoveStaleNamespaces();
  std::unique_ptr<Topology> t(new Topology());
  absl::Status built = t->Build(sites);
  if (!built.ok()) return built;  // the destructor removes what was made
  return t;
}

absl::Status Topology::Build(const std::vector<std::string>& sites) {
  const int pid = getpid();
  const std::string prefix = absl::StrCat(kPrefix, pid, "-");
  // 10.A.B.0/24 from the pid, moved on while a route of ours overlaps it.
  ASSIGN_OR_RETURN(std::string routes, Run({kIp, "-4", "route", "show", "table", "all"}));
  uint32_t net = 0;
  for (int i = 0; i < 256; ++i) {
    const uint32_t a = 100 + (pid + i) % 100;
    const uint32_t b = ((pid + i) / 100) % 256;
    net = (10u << 24) | (a << 16) | (b << 8);
    if (!Overlaps(net, routes)) break;
    net = 0;
  }
  if (net == 0) return absl::FailedPreconditionError("no free 10.x.y.0/24 subnet");
  network_ip_ = Ipv4(net + 1);
  coordinator_ip_ = Ipv4(net + 2);

  network_ns_ = prefix + "net";
  {
    absl::StatusOr<std::string> added = Run({kIp, "netns", "add", network_ns_});
    if (!added.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create a network namespace: ", added.status().message()));
    }
    made_.push_back(network_ns_);
  }
  const std::vector<std::string> in_net = {kIp, "-n", network_ns_};
  auto net_ip = [&](std::vector<std::string> words) {
    std::vector<std::string> argv = in_net;
    argv.insert(argv.end(), words.begin(), words.end());
    return Run(argv).status();
  };
  RETURN_IF_ERROR(net_ip({"link", "set", "lo", "up"}));
  RETURN_IF_ERROR(net_ip({"link", "add", "br0", "type", "bridge"}));
  RETURN_IF_ERROR(net_ip({"addr", "add", network_ip_ + "/24", "dev", "br0"}));
  RETURN_IF_ERROR(net_ip({"link", "set", "br0", "up"}));

  // One host: its namespace, a veth pair (eth0 there, `port` on the bridge), its address.
  auto add_host = [&](const std::string& ns, const std::string& port,
                      const std::string& ip) -> absl::Status {
    RETURN_IF_ERROR(Run({kIp, "netns", "add", ns}).status());
    made_.push_back(ns);
    RETURN_IF_ERROR(
        net_ip({"link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns}));
    RETURN_IF_ERROR(net_ip({"link", "set", port, "master", "br0"}));
    RETURN_IF_ERROR(net_ip({"link", "set", port, "up"}));
    RETURN_IF_ERROR(Run({kIp, "-n", ns, "link", "set", "lo", "up"}).status());
    RETURN_IF_ERROR(Run({kIp, "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"}).status());
    return Run({kIp, "-n", ns, "link", "set", "eth0", "up"}).status();
  };
  coordinator_ns_ = prefix + "coord";
  RETURN_IF_ERROR(add_host(coordinator_ns_, "coord", coordinator_ip_));
  for (size_t i = 0; i < sites.size(); ++i) {
    const std::string port = absl::StrCat("s", i);
    site_ns_[sites[i]] = prefix + port;
    site_port_[sites[i]] = port;
    site_ip_[sites[i]] = Ipv4(net + 11 + static_cast<uint32_t>(i));
    RETURN_IF_ERROR(add_host(site_ns_[sites[i]], port, site_ip_[sites[i]]));
  }
  // The test's leg: created here, its peer moved into the network namespace at once.
  const std::string leg = absl::StrCat("tsr", pid);
  RETURN_IF_ERROR(
      Run({kIp, "link", "add", leg, "type", "veth", "peer", "name", "host", "netns", network_ns_})
          .status());
  RETURN_IF_ERROR(net_ip({"link", "set", "host", "master", "br0"}));
  RETURN_IF_ERROR(net_ip({"link", "set", "host", "up"}));
  RETURN_IF_ERROR(Run({kIp, "addr", "add", Ipv4(net + 254) + "/24", "dev", leg}).status());
  return Run({kIp, "link", "set", leg, "up"}).status();
}

Topology::~Topology() {
  // Removing the network namespace removes the bridge, every port and, with its peer, the
  // test's leg; the hosts' namespaces take their eth0 with them.
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    absl::StatusOr<std::string> removed = Run({kIp, "netns", "del", *it});
    if (!removed.ok())
      std::fprintf(stderr, "netns cleanup: %s\n", removed.status().ToString().c_str());
  }
}

std::vector<std::string> Topology::Exec(const std::string& ns) const {
  return {kIp, "netns", "exec", ns};
}

absl::Status Topology::LimitRate(const std::string& site, const std::string& rate) {
  // burst 32 KiB: several full-size packets at once, as a switch port would queue; latency
  // bounds the queue (packets that would wait longer are dropped and TCP slows down).
  const std::vector<std::string> tbf = {"root",  "tbf",  "rate",    rate,
                                        "burst", "32kb", "latency", "100ms"};
  std::vector<std::string> up = {kTc, "-n", site_ns_.at(site), "qdisc", "replace", "dev", "eth0"};
  up.insert(up.end(), tbf.begin(), tbf.end());
  RETURN_IF_ERROR(Run(up).status());
  std::vector<std::string> down = {kTc,       "-n",  network_ns_,        "qdisc",
                                   "replace", "dev", site_port_.at(site)};
  down.insert(down.end(), tbf.begin(), tbf.end());
  return Run(down).status();
}

absl::Status Topology::CapSocketBuffers(const std::string& ns, int max_bytes) {
  for (const char* key : {"net.ipv4.tcp_wmem", "net.ipv4.tcp_rmem"}) {
    std::vector<std::string> argv = Exec(ns);
    argv.insert(argv.end(), {kSysctl, "-q", "-w", absl::StrCat(key, "=4096 16384 ", max_bytes)});
    RETURN_IF_ERROR(Run(argv).status());
  }
  return absl::OkStatus();
}

absl::Status Topology::SetLinkUp(const std::string& site, bool up) {
  return Run({kIp, "-n", network_ns_, "link", "set", site_port_.at(site), up ? "up" : "down"})
      .status();
}

absl::StatusOr<Topology::LinkBytes> Topology::SiteLinkBytes(const std::string& site) {
  LinkBytes bytes;
  for (const char* counter : {"tx_bytes", "rx_bytes"}) {
    std::vector<std::string> argv = Exec(site_ns_.at(site));
    argv.insert(argv.end(), {"/bin/cat", absl::StrCat("/sys/class/net/eth0/statistics/", counter)});
    ASSIGN_OR_RETURN(std::string text, Run(argv));
    int64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value)) {
      return absl::InternalError(absl::StrCat(counter, " of ", site, ": '", text, "'"));
    }
    (std::string(counter) == "tx_bytes" ? bytes.from_site : bytes.to_site) = value;
  }
  return bytes;
}

}  // namespace tessera::netns
