// The fault-injecting relay itself (tests/testing/fault_relay.h), on loopback: what it
// forwards arrives intact and in order, delays and rates are what was asked within a
// tolerance, resets reach both peers, cuts hold traffic until restored. Fast (a few seconds
// in all); runs in CI with everything else.
#include "tests/testing/fault_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::testing {
namespace {

using ::testing::HasSubstr;

// A blocking TCP echo server on 127.0.0.1 with one thread per connection; it records how
// each connection ended.
class EchoServer {
 public:
  EchoServer() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listener_, 16) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "echo server: " << strerror(errno);
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~EchoServer() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);  // wakes accept()
    close(listener_);
    acceptor_.join();
    std::vector<int> fds;
    {
      absl::MutexLock lock(&mu_);
      fds = fds_;
    }
    for (int fd : fds) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : workers_) t.join();
    for (int fd : fds) close(fd);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int accepted() const { return accepted_; }
  int resets_seen() const { return resets_seen_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      ++accepted_;
      absl::MutexLock lock(&mu_);
      fds_.push_back(fd);
      workers_.emplace_back([this, fd] { Echo(fd); });
    }
  }
  void Echo(int fd) {
    char buf[65536];
    while (true) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == ECONNRESET) ++resets_seen_;
      if (n <= 0) return;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
        // A write after the peer's RST fails with ECONNRESET, or EPIPE once it was taken.
        if (w < 0 && (errno == ECONNRESET || errno == EPIPE)) ++resets_seen_;
        if (w <= 0) return;
        off += w;
      }
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> resets_seen_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;  // joined in the destructor
};

// A connected client socket to 127.0.0.1:`port`, or -1 with errno.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    ssize_t w = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return false;
    off += w;
  }
  return true;
}

// Reads exactly `n` bytes within `timeout`. Returns what arrived; *error gets errno of a
// failed read (ECONNRESET), 0 on EOF or timeout.
std::string Receive(int fd, size_t n, absl::Duration timeout, int* error = nullptr) {
  std::string out;
  const absl::Time give_up = absl::Now() + timeout;
  if (error != nullptr) *error = 0;
  while (out.size() < n) {
    const int left_ms = static_cast<int>(absl::ToInt64Milliseconds(give_up - absl::Now()));
    if (left_ms <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left_ms) <= 0) break;
    char buf[65536];
    ssize_t r = recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (r < 0 && error != nullptr) *error = errno;
    if (r <= 0) break;
    out.append(buf, r);
  }
  return out;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class FaultRelayTest : public ::testing::Test {
 protected:
  std::unique_ptr<FaultRelay> StartRelay(const std::string& up, const std::string& down,
                                         int max_resets = -1, const std::string& schedule = "") {
    RelayOptions options;
    options.upstream = echo_.address();
    auto parsed_up = ParseDirectionFaults(up);
    auto parsed_down = ParseDirectionFaults(down);
    auto parsed_schedule = ParseRelaySchedule(schedule);
    EXPECT_OK(parsed_up.status());
    EXPECT_OK(parsed_down.status());
    EXPECT_OK(parsed_schedule.status());
    options.up = *parsed_up;
    options.down = *parsed_down;
    options.schedule = *parsed_schedule;
    options.max_resets = max_resets;
    auto relay = FaultRelay::Start(options);
    EXPECT_OK(relay.status());
    return std::move(*relay);
  }

  // A connection to the relay (-1, with a failure, if it cannot be made).
  static int Open(const FaultRelay& relay) {
    int fd = Connect(relay.port());
    EXPECT_GE(fd, 0) << "connect to the relay: " << strerror(errno);
    return fd;
  }

  // One byte there and back; the round-trip time.
  absl::Duration Ping(int fd) {
    const absl::Time t0 = absl::Now();
    EXPECT_TRUE(SendAll(fd, "x"));
    EXPECT_EQ(Receive(fd, 1, absl::Seconds(5)), "x");
    return absl::Now() - t0;
  }

  EchoServer echo_;
};

TEST_F(FaultRelayTest, ForwardsBytesIntactAndInOrderUnderJitter) {
  // Jitter as large as the delay: chunks drawn later may be due earlier; none overtakes.
  auto relay = StartRelay("delay=5ms,jitter=5ms", "delay=5ms,jitter=5ms");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  const std::string data = RandomBytes(2 << 20, 7);
  std::thread writer([&] {
    for (size_t off = 0; off < data.size(); off += 50000) {
      ASSERT_TRUE(SendAll(fd, data.substr(off, 50000)));
    }
  });
  const std::string back = Receive(fd, data.size(), absl::Seconds(30));
  writer.join();
  close(fd);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "bytes changed or reordered on the way";
  EXPECT_TRUE(Eventually([&] { return relay->stats().bytes_down == (2 << 20); }, absl::Seconds(5)))
      << relay->stats().ToString();
  EXPECT_EQ(relay->stats().bytes_up, 2 << 20);
}

TEST_F(FaultRelayTest, DelayWithJitterIsWhatWasAsked) {
  // 50 ms ± 10 ms each way: every round trip within [80 ms, 120 ms] plus scheduling slack.
  auto relay = StartRelay("delay=50ms,jitter=10ms", "delay=50ms,jitter=10ms");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  absl::Duration total;
  absl::Duration least = absl::InfiniteDuration();
  absl::Duration most;
  constexpr int kPings = 12;
  for (int i = 0; i < kPings; ++i) {
    absl::Duration rtt = Ping(fd);
    total += rtt;
    least = std::min(least, rtt);
    most = std::max(most, rtt);
  }
  close(fd);
  EXPECT_GE(least, absl::Milliseconds(79));
  // Upper bounds with room for a loaded machine's scheduling.
  EXPECT_LE(most, absl::Milliseconds(250));
  EXPECT_GE(total / kPings, absl::Milliseconds(85));
  EXPECT_LE(total / kPings, absl::Milliseconds(140));
  // Not a constant: the jitter shows.
  EXPECT_GT(most - least, absl::Milliseconds(2));
}

TEST_F(FaultRelayTest, ResetAfterBytesReachesBothPeersAsRst) {
  auto relay = StartRelay("reset_after=1000", "", /*max_resets=*/1);
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, std::string(4000, 'a')));
  int error = 0;
  std::string back = Receive(fd, 4000, absl::Seconds(5), &error);
  close(fd);
  EXPECT_LT(back.size(), 4000u);
  EXPECT_EQ(error, ECONNRESET) << "the client saw " << strerror(error) << ", not an RST";
  EXPECT_TRUE(Eventually([&] { return echo_.resets_seen() == 1; }, absl::Seconds(5)))
      << "the upstream did not see an RST";
  EXPECT_TRUE(Eventually([&] { return relay->stats().resets == 1; }, absl::Seconds(5)));
  // max_resets = 1: the next connection is left alone.
  fd = Open(*relay);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, std::string(4000, 'b')));
  EXPECT_EQ(Receive(fd, 4000, absl::Seconds(5)), std::string(4000, 'b'));
  close(fd);
  EXPECT_EQ(relay->stats().resets, 1);
}

TEST_F(FaultRelayTest, BandwidthLimitHoldsWithinTolerance) {
  // 16 Mbit/s = 2e6 bytes/s one way: 1 MiB takes 0.524 s; never 10% less (the limit
  // holds), at most 30% more (a loaded machine).
  auto relay = StartRelay("rate=16mbit", "");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  const std::string data = RandomBytes(1 << 20, 3);
  const absl::Time t0 = absl::Now();
  std::thread writer([&] { ASSERT_TRUE(SendAll(fd, data)); });
  const std::string back = Receive(fd, data.size(), absl::Seconds(10));
  const absl::Duration took = absl::Now() - t0;
  writer.join();
  close(fd);
  ASSERT_TRUE(back == data);
  const double expected = (1 << 20) / 2e6;
  EXPECT_GE(absl::ToDoubleSeconds(took), expected * 0.9) << took;
  EXPECT_LE(absl::ToDoubleSeconds(took), expected * 1.3) << took;
}

TEST_F(FaultRelayTest, CutHoldsTrafficAndNewConnectionsUntilRestored) {
  auto relay = StartRelay("", "");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  Ping(fd);
  ASSERT_EQ(echo_.accepted(), 1);
  relay->Cut();
  ASSERT_TRUE(Eventually([&] { return relay->stats().cut; }, absl::Seconds(5)));
  ASSERT_TRUE(SendAll(fd, "held"));
  // Accepted by the relay's kernel, but not connected upstream while cut.
  int late = Open(*relay);
  ASSERT_GE(late, 0);
  ASSERT_TRUE(SendAll(late, "late"));
  EXPECT_EQ(Receive(fd, 4, absl::Milliseconds(300)), "") << "forwarded through a cut";
  EXPECT_EQ(echo_.accepted(), 1);
  relay->Restore();
  EXPECT_EQ(Receive(fd, 4, absl::Seconds(5)), "held");
  EXPECT_EQ(Receive(late, 4, absl::Seconds(5)), "late");
  EXPECT_EQ(echo_.accepted(), 2);
  EXPECT_EQ(relay->stats().cuts, 1);
  close(fd);
  close(late);
}

TEST_F(FaultRelayTest, CutAfterBytesLetsExactlyThatManyPassThenCutsTheLink) {
  auto relay = StartRelay("", "");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  Ping(fd);  // before the fault: not counted
  ASSERT_OK(relay->Command("up cut_after=1000"));
  // One write larger than the budget: the chunk that crosses it is split, and exactly the
  // budget goes upstream before the link is cut (both ways: the echo waits too).
  ASSERT_TRUE(SendAll(fd, std::string(1000, 'a') + std::string(3000, 'b')));
  ASSERT_TRUE(Eventually([&] { return relay->stats().cut; }, absl::Seconds(5)))
      << relay->stats().ToString();
  EXPECT_EQ(relay->stats().bytes_up, 1 + 1000);
  EXPECT_EQ(relay->stats().cuts, 1);
  EXPECT_EQ(Receive(fd, 1, absl::Milliseconds(300)), "") << "forwarded through the cut";
  EXPECT_EQ(relay->stats().bytes_up, 1 + 1000) << "forwarded past the count";
  // Restored, everything arrives in order, and the spent count does not cut again.
  relay->Restore();
  EXPECT_EQ(Receive(fd, 4000, absl::Seconds(5)), std::string(1000, 'a') + std::string(3000, 'b'));
  EXPECT_LT(Ping(fd), absl::Seconds(5));
  EXPECT_EQ(relay->stats().cuts, 1);
  close(fd);
}

TEST_F(FaultRelayTest, RefuseResetsLiveConnectionsAndRefusesNewOnes) {
  auto relay = StartRelay("", "");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  Ping(fd);
  ASSERT_OK(relay->Command("refuse"));
  int error = 0;
  EXPECT_EQ(Receive(fd, 1, absl::Seconds(5), &error), "");
  EXPECT_EQ(error, ECONNRESET);
  close(fd);
  ASSERT_TRUE(Eventually(
      [&] {
        int probe = Connect(relay->port());
        if (probe >= 0) close(probe);
        return probe < 0 && errno == ECONNREFUSED;
      },
      absl::Seconds(5)));
  ASSERT_OK(relay->Command("restore"));
  ASSERT_TRUE(Eventually(
      [&] {
        int again = Connect(relay->port());
        if (again < 0) return false;
        Ping(again);
        close(again);
        return true;
      },
      absl::Seconds(5)));
}

TEST_F(FaultRelayTest, StallHoldsOneDirectionForItsWindow) {
  // Down stalls during the relay's first 400 ms: a ping sent at once comes back after it.
  const absl::Time start = absl::Now();
  auto relay = StartRelay("", "stall=0s+400ms");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "s"));
  EXPECT_EQ(Receive(fd, 1, absl::Seconds(5)), "s");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  // After the window, no delay (well under the stall).
  EXPECT_LT(Ping(fd), absl::Milliseconds(200));
  close(fd);
}

TEST_F(FaultRelayTest, ScheduledResetHitsEveryLiveConnection) {
  auto relay = StartRelay("", "", -1, "reset@300ms");
  int a = Connect(relay->port());
  int b = Connect(relay->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  Ping(a);
  Ping(b);
  int error_a = 0;
  int error_b = 0;
  EXPECT_EQ(Receive(a, 1, absl::Seconds(5), &error_a), "");
  EXPECT_EQ(Receive(b, 1, absl::Seconds(5), &error_b), "");
  EXPECT_EQ(error_a, ECONNRESET);
  EXPECT_EQ(error_b, ECONNRESET);
  EXPECT_TRUE(Eventually([&] { return relay->stats().resets == 2; }, absl::Seconds(5)))
      << relay->stats().ToString();
  close(a);
  close(b);
}

TEST_F(FaultRelayTest, ChangedFaultsApplyToLaterData) {
  auto relay = StartRelay("", "");
  int fd = Open(*relay);
  ASSERT_GE(fd, 0);
  EXPECT_LT(Ping(fd), absl::Milliseconds(100));
  ASSERT_OK(relay->Command("both delay=100ms"));
  EXPECT_TRUE(Eventually([&] { return Ping(fd) >= absl::Milliseconds(190); }, absl::Seconds(5)));
  close(fd);
}

TEST(FaultRelayParseTest, ErrorsNameTheFaultAndItsValue) {
  EXPECT_THAT(ParseDirectionFaults("delay=soon").status().message(), HasSubstr("delay: 'soon'"));
  EXPECT_THAT(ParseDirectionFaults("rate=10").status().message(), HasSubstr("rate: '10'"));
  EXPECT_THAT(ParseDirectionFaults("rate=-1mbit").status().message(), HasSubstr("rate"));
  EXPECT_THAT(ParseDirectionFaults("reset_after=0").status().message(), HasSubstr("reset_after"));
  EXPECT_THAT(ParseDirectionFaults("cut_after=-5").status().message(),
              HasSubstr("cut_after: '-5'"));
  EXPECT_THAT(ParseDirectionFaults("stall=2s").status().message(), HasSubstr("AT+FOR"));
  EXPECT_THAT(ParseDirectionFaults("loss=1%").status().message(),
              HasSubstr("unknown fault 'loss'"));
  EXPECT_THAT(ParseRelaySchedule("explode@1s").status().message(), HasSubstr("explode@1s"));
  auto ok = ParseDirectionFaults("delay=50ms, jitter=10ms,rate=10mbit,stall=1s+2s,stall=5s+1s");
  ASSERT_OK(ok.status());
  EXPECT_EQ(ok->delay, absl::Milliseconds(50));
  EXPECT_EQ(ok->jitter, absl::Milliseconds(10));
  EXPECT_DOUBLE_EQ(ok->rate_bytes_per_second, 1.25e6);
  EXPECT_EQ(ok->stalls.size(), 2u);
  RelayOptions bad;
  bad.upstream = "localhost:80";
  EXPECT_THAT(FaultRelay::Start(bad).status().message(), HasSubstr("numeric IP"));
}

// tessera-fault-relay, the program the network-namespace suite runs: its ready file, its
// control file (executed line by line, counted in its stats file), a clean stop on SIGTERM,
// and a refused fault that names itself.
TEST_F(FaultRelayTest, ProgramTakesCommandsFromItsControlFileAndStopsCleanly) {
  TempDir dir;
  const std::string ready = dir.File("ready");
  const std::string control = dir.File("control");
  const std::string stats = dir.File("stats");
  ASSERT_OK_AND_ASSIGN(auto relay,
                       e2e::Process::Start({TESSERA_FAULT_RELAY_BIN, "--upstream", echo_.address(),
                                            "--down", "delay=1ms", "--ready-file", ready,
                                            "--control-file", control, "--stats-file", stats},
                                           dir.File("log")));
  ASSERT_OK_AND_ASSIGN(std::string bound, e2e::WaitForFile(ready, *relay));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      bound.substr(bound.rfind(':') + 1, bound.size() - bound.rfind(':') - 2), &port))
      << bound;
  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  Ping(fd);
  auto append = [&](const std::string& line) {
    std::ofstream(control, std::ios::app) << line << "\n";
  };
  append("cut");
  ASSERT_OK(e2e::WaitFor(
      "the cut",
      [&] { return absl::StrContains(e2e::ReadFileOrEmpty(stats), "cut=true commands=1"); },
      absl::Seconds(5)));
  ASSERT_TRUE(SendAll(fd, "z"));
  EXPECT_EQ(Receive(fd, 1, absl::Milliseconds(200)), "");
  append("restore");
  EXPECT_EQ(Receive(fd, 1, absl::Seconds(5)), "z");
  close(fd);
  const e2e::ExitStatus how = relay->Terminate();
  EXPECT_TRUE(how.Succeeded()) << how.ToString() << relay->LogTail();
  EXPECT_THAT(
      e2e::ReadFileOrEmpty(stats),
      HasSubstr("connections=1 resets=0 bytes_up=2 bytes_down=2 cuts=1 cut=false commands=2"));
  EXPECT_FALSE(std::ifstream(ready).good()) << "the ready file outlived the relay";

  ASSERT_OK_AND_ASSIGN(e2e::CommandResult bad,
                       e2e::RunCommand({TESSERA_FAULT_RELAY_BIN, "--upstream", echo_.address(),
                                        "--up", "delay=soon"}));
  EXPECT_EQ(bad.exit_code(), 2);
  EXPECT_THAT(bad.err, HasSubstr("delay: 'soon'"));
}

}  // namespace
}  // namespace tessera::testing
