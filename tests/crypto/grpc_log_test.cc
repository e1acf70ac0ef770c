// gRPC's log through common/log.h, and TLS handshake failures naming the peer, against a
// real gRPC server with the federation's server credentials on loopback.
#include "crypto/grpc_log.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "crypto/tls.h"
#include "gmock/gmock.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/federation.grpc.pb.h"
#include "tests/testing/raw_http.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class LogCapture {
 public:
  LogCapture() {
    common::SetLogSink([this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(line);
    });
  }
  ~LogCapture() { common::SetLogSink(nullptr); }
  // The first line containing `needle`, waiting up to `timeout` for it; "" if none came.
  std::string WaitFor(const std::string& needle, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const std::string& l : lines_) {
        if (l.find(needle) != std::string::npos) return true;
      }
      return false;
    };
    mu_.AwaitWithDeadline(absl::Condition(&has), until);
    for (const std::string& l : lines_) {
      if (l.find(needle) != std::string::npos) return l;
    }
    return "";
  }
  std::string All() {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const std::string& l : lines_) absl::StrAppend(&out, l, "\n");
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

TEST(GrpcLogTest, FailedHandshakeIsOneWarningNamingThePeer) {
  RouteGrpcLogs();
  LogCapture log;
  tessera::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, tessera::testing::TestPki::Create(dir.path()));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles files, pki->IssueNode("coordinator", Role::kCoordinator));
  ASSERT_OK_AND_ASSIGN(TlsMaterial tls, LoadTlsMaterial(files, Role::kCoordinator, absl::Now()));
  // A server needs a service (this one answers UNIMPLEMENTED; no call is made).
  v1::Federation::Service service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(tls), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr) << log.All();

  // Plain HTTP at a TLS port: the handshake fails at the first bytes.
  tessera::testing::RawHttpConnection peer(port);
  ASSERT_TRUE(peer.ok());
  const int local = peer.local_port();
  ASSERT_TRUE(peer.Write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string line = log.WaitFor("event=tls_handshake_failed", absl::Seconds(10));
  peer.Close();
  server->Shutdown(std::chrono::system_clock::now());

  ASSERT_FALSE(line.empty()) << log.All();
  EXPECT_THAT(line, HasSubstr("level=warning"));
  EXPECT_THAT(line, HasSubstr(absl::StrCat("peer=ipv4:127.0.0.1:", local)));
  EXPECT_THAT(line, HasSubstr("http request"));
  // gRPC's own line is replaced, not repeated, and the tcp tracer's lines never show.
  const std::string all = log.All();
  EXPECT_THAT(all, Not(HasSubstr("Handshake failed with fatal error")));
  EXPECT_THAT(all, Not(HasSubstr("tcp_posix.cc")));
  EXPECT_THAT(all, Not(HasSubstr("READ 0x")));
}

TEST(GrpcLogTest, GrpcErrorsBecomeOurEventsInOurFormat) {
  RouteGrpcLogs();
  common::SetLogFormat(common::LogFormat::kJson);
  LogCapture log;
  gpr_log(__FILE__, 42, GPR_LOG_SEVERITY_ERROR, "something \"odd\" happened");
  gpr_log(__FILE__, 43, GPR_LOG_SEVERITY_INFO, "routine chatter");
  common::SetLogFormat(common::LogFormat::kLogfmt);
  const std::string all = log.All();
  EXPECT_THAT(all,
              HasSubstr("\"level\":\"error\",\"event\":\"grpc\",\"source\":\"grpc_log_test.cc:42\","
                        "\"message\":\"something \\\"odd\\\" happened\"}"));
  // gRPC's INFO is our debug: not shown at the default level.
  EXPECT_THAT(all, Not(HasSubstr("routine chatter")));
}

}  // namespace
}  // namespace tessera::crypto
