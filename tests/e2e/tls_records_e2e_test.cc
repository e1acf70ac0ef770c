// The TLS records the coordinator sends, seen on the wire: a TCP relay between a client and
// the real coordinator process reads each record's 5-byte header (plaintext in TLS 1.3 too)
// and keeps the longest. The coordinator caps its records at 4 KiB
// (GRPC_ARG_TSI_MAX_FRAME_SIZE, coordinator/server.cc): gRPC keeps one buffer of that size
// per connection to build them in, so the cap is memory per site (docs/performance.md).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "crypto/tls.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

// A loopback TCP relay to `target_port` that reads the TLS records flowing back (from the
// server) as it forwards them. Thread-safe; stops and joins its threads when destroyed.
class TlsRecordRelay {
 public:
  static absl::StatusOr<std::unique_ptr<TlsRecordRelay>> Start(int target_port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::InternalError("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd, 16) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("relay listener: errno ", errno));
    }
    return std::unique_ptr<TlsRecordRelay>(
        new TlsRecordRelay(fd, ntohs(addr.sin_port), target_port));
  }

  ~TlsRecordRelay() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (std::thread& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
  }

  int port() const { return port_; }
  // The longest application-data record the server sent, and how many it sent.
  size_t longest_record() const { return longest_.load(); }
  size_t records() const { return records_.load(); }

 private:
  TlsRecordRelay(int listen_fd, int port, int target_port)
      : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
    acceptor_ = std::thread([this] { Accept(); });
  }

  void Accept() {
    while (true) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;  // the listener was shut down
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(client);
        if (server >= 0) ::close(server);
        continue;
      }
      absl::MutexLock lock(&mu_);
      fds_.push_back(client);
      fds_.push_back(server);
      pumps_.emplace_back([this, client, server] { Pump(client, server, /*records=*/false); });
      pumps_.emplace_back([this, client, server] { Pump(server, client, /*records=*/true); });
    }
  }

  // Forwards `from` to `to` until `from` ends; with `records`, parses the stream as TLS
  // records (type, version, 16-bit length, body).
  void Pump(int from, int to, bool records) {
    std::vector<char> buffer(64 << 10);
    std::string pending;
    while (true) {
      const ssize_t n = ::read(from, buffer.data(), buffer.size());
      if (n <= 0) break;
      for (ssize_t sent = 0; sent < n;) {
        const ssize_t w = ::write(to, buffer.data() + sent, static_cast<size_t>(n - sent));
        if (w <= 0) return;
        sent += w;
      }
      if (!records) continue;
      pending.append(buffer.data(), static_cast<size_t>(n));
      size_t at = 0;
      while (pending.size() - at >= 5) {
        const auto* header = reinterpret_cast<const unsigned char*>(pending.data() + at);
        const size_t length = (static_cast<size_t>(header[3]) << 8) | header[4];
        if (pending.size() - at < 5 + length) break;
        if (header[0] == 23) {  // application data
          ++records_;
          size_t longest = longest_.load();
          while (length > longest && !longest_.compare_exchange_weak(longest, length)) {
          }
        }
        at += 5 + length;
      }
      pending.erase(0, at);
    }
    ::shutdown(to, SHUT_WR);
  }

  const int listen_fd_;
  const int port_;
  const int target_port_;
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> longest_{0};
  std::atomic<size_t> records_{0};
};

class E2eTlsRecordTest : public FederationTest {};

TEST_F(E2eTlsRecordTest, TheCoordinatorSendsTlsRecordsOfAtMost4KiB) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TlsRecordRelay> relay, TlsRecordRelay::Start(port()));
  size_t received = 0;
  {
    // An operator's backup: the coordinator streams its store, far more than a record.
    ASSERT_OK_AND_ASSIGN(
        crypto::TlsMaterial material,
        crypto::LoadTlsMaterial(operator_tls(), crypto::Role::kOperator, absl::Now()));
    std::shared_ptr<grpc::Channel> channel =
        crypto::MakeChannel(absl::StrCat("127.0.0.1:", relay->port()), "127.0.0.1", material);
    auto stub = v1::Admin::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    auto reader = stub->BackupStore(&ctx, v1::BackupStoreRequest());
    v1::BackupStoreChunk chunk;
    while (reader->Read(&chunk)) received += chunk.ByteSizeLong();
    ASSERT_TRUE(reader->Finish().ok());
  }
  std::printf("tls record figures: %zu bytes of backup in %zu records, the longest %zu bytes\n",
              received, relay->records(), relay->longest_record());
  ASSERT_GT(received, size_t{16} << 10);  // several records at any cap
  EXPECT_GT(relay->records(), received / 4096);
  EXPECT_LE(relay->longest_record(), size_t{4096});
}

}  // namespace
}  // namespace tessera::e2e
