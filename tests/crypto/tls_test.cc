#include "crypto/tls.h"

#include <arpa/inet.h>
#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "crypto/internal/openssl_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/config.pb.h"
#include "proto/federation.grpc.pb.h"
#include "tests/testing/fault_relay.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::crypto {
namespace {

using internal::UniqueBio;
using internal::UniqueEvpPkey;
using internal::UniqueSsl;
using internal::UniqueSslCtx;
using internal::UniqueX509;
using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::tessera::testing::TestPki;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kRpcDeadlineSeconds = 20;

// Hello answers with the identity the server read from the TLS peer.
class IdentityEchoService final : public v1::Federation::Service {
 public:
  grpc::Status Hello(grpc::ServerContext* context, const v1::HelloRequest* /*request*/,
                     v1::HelloResponse* response) override {
    absl::StatusOr<CertificateInfo> peer = PeerIdentity(*context->auth_context());
    if (!peer.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(peer.status().message()));
    }
    absl::MutexLock lock(&mu_);
    last_role_ = peer->role;
    response->set_client_id(peer->node_id);
    return grpc::Status::OK;
  }

  Role last_role() const {
    absl::MutexLock lock(&mu_);
    return last_role_;
  }

 private:
  mutable absl::Mutex mu_;
  Role last_role_ ABSL_GUARDED_BY(mu_) = Role::kInstitution;
};

// A server on 127.0.0.1 with an OS-chosen port.
struct RunningServer {
  std::unique_ptr<IdentityEchoService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  ~RunningServer() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
  }
};

std::unique_ptr<RunningServer> StartServer(std::shared_ptr<grpc::ServerCredentials> creds) {
  auto running = std::make_unique<RunningServer>();
  running->service = std::make_unique<IdentityEchoService>();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", std::move(creds), &running->port);
  builder.RegisterService(running->service.get());
  running->server = builder.BuildAndStart();
  if (running->server == nullptr || running->port <= 0) return nullptr;
  return running;
}

grpc::Status CallHello(const std::shared_ptr<grpc::Channel>& channel, std::string* client_id) {
  auto stub = v1::Federation::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(kRpcDeadlineSeconds));
  v1::HelloRequest request;
  v1::HelloResponse response;
  grpc::Status status = stub->Hello(&context, request, &response);
  if (client_id != nullptr) *client_id = response.client_id();
  return status;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(dir_.path()));
    ASSERT_OK_AND_ASSIGN(coordinator_files_, pki_->IssueNode("coordinator", Role::kCoordinator));
    ASSERT_OK_AND_ASSIGN(site_files_, pki_->IssueNode("hospital-a", Role::kInstitution));
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         LoadTlsMaterial(coordinator_files_, Role::kCoordinator, absl::Now()));
    ASSERT_OK_AND_ASSIGN(site_, LoadTlsMaterial(site_files_, Role::kInstitution, absl::Now()));
  }

  // Material read straight from files, without the checks LoadTlsMaterial makes: for a
  // node that a misconfigured or hostile peer would present.
  static TlsMaterial UncheckedMaterial(const v1::TlsFiles& files) {
    TlsMaterial material;
    material.ca_cert_pem = *common::ReadFile(files.ca_cert());
    material.cert_pem = *common::ReadFile(files.cert());
    material.key_pem = SecretBytes(*common::ReadFile(files.key()));
    return material;
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  v1::TlsFiles coordinator_files_;
  v1::TlsFiles site_files_;
  TlsMaterial coordinator_;
  TlsMaterial site_;
};

// ---- LoadTlsMaterial ---------------------------------------------------------------

TEST_F(TlsTest, LoadsAndChecksGoodFiles) {
  EXPECT_EQ(site_.identity.node_id, "hospital-a");
  EXPECT_EQ(site_.identity.role, Role::kInstitution);
  EXPECT_EQ(site_.identity.federation, "test-federation");
  EXPECT_EQ(coordinator_.identity.role, Role::kCoordinator);
  EXPECT_THAT(std::string(site_.key_pem.view()), HasSubstr("BEGIN PRIVATE KEY"));
  EXPECT_EQ(site_.ca_cert_pem, pki_->ca().cert_pem);
}

TEST_F(TlsTest, RefusesAKeyFileOthersCanRead) {
  ASSERT_EQ(::chmod(site_files_.key().c_str(), 0644), 0);
  EXPECT_THAT(LoadTlsMaterial(site_files_, Role::kInstitution, absl::Now()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(site_files_.key()), HasSubstr("0644"))));
  ASSERT_EQ(::chmod(site_files_.key().c_str(), 0400), 0);
  EXPECT_OK(LoadTlsMaterial(site_files_, Role::kInstitution, absl::Now()));
}

TEST_F(TlsTest, RefusesTheWrongRole) {
  EXPECT_THAT(LoadTlsMaterial(site_files_, Role::kOperator, absl::Now()),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr(site_files_.cert()),
                             HasSubstr("hospital-a has role institution, operator required"))));
}

TEST_F(TlsTest, RefusesExpiredAndNotYetValidCertificates) {
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles expired, pki_->IssueExpired("old-site", Role::kInstitution));
  EXPECT_THAT(LoadTlsMaterial(expired, Role::kInstitution, absl::Now()),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       AllOf(HasSubstr(expired.cert()), HasSubstr("expired"))));
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles early, pki_->IssueNotYetValid("new-site", Role::kInstitution));
  EXPECT_THAT(LoadTlsMaterial(early, Role::kInstitution, absl::Now()),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not yet valid")));
}

TEST_F(TlsTest, RefusesACertificateFromAForeignCa) {
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles foreign, pki_->IssueForeign("intruder", Role::kInstitution));
  EXPECT_THAT(
      LoadTlsMaterial(foreign, Role::kInstitution, absl::Now()),
      StatusIs(absl::StatusCode::kUnauthenticated,
               AllOf(HasSubstr(foreign.cert()), HasSubstr("not signed by the federation CA"))));
}

TEST_F(TlsTest, RefusesAKeyThatIsNotTheCertificates) {
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles other, pki_->IssueNode("hospital-b", Role::kInstitution));
  v1::TlsFiles mixed = site_files_;
  mixed.set_key(other.key());
  absl::StatusOr<TlsMaterial> loaded = LoadTlsMaterial(mixed, Role::kInstitution, absl::Now());
  EXPECT_THAT(loaded, StatusIs(absl::StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr(other.key()), HasSubstr("does not match"))));
  // Whatever the error says, it does not quote the key.
  const std::string key_text = *common::ReadFile(other.key());
  const std::string key_line = key_text.substr(key_text.find('\n') + 1, 40);
  EXPECT_THAT(std::string(loaded.status().message()), Not(HasSubstr(key_line)));
}

TEST_F(TlsTest, ReportsMissingFilesByName) {
  v1::TlsFiles missing = site_files_;
  missing.set_cert(dir_.File("nope.crt"));
  EXPECT_THAT(LoadTlsMaterial(missing, Role::kInstitution, absl::Now()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.crt")));
  v1::TlsFiles empty = site_files_;
  empty.clear_key();
  EXPECT_THAT(LoadTlsMaterial(empty, Role::kInstitution, absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls.key")));
}

// ---- gRPC over loopback ------------------------------------------------------------

TEST_F(TlsTest, MutualTlsHandshakeCarriesTheClientIdentity) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  std::string client_id;
  grpc::Status status = CallHello(MakeChannel(server->address(), "", site_), &client_id);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(client_id, "hospital-a");
  EXPECT_EQ(server->service->last_role(), Role::kInstitution);

  // An operator is recognised as one.
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles op_files, pki_->IssueNode("alice", Role::kOperator));
  ASSERT_OK_AND_ASSIGN(TlsMaterial op, LoadTlsMaterial(op_files, Role::kOperator, absl::Now()));
  status = CallHello(MakeChannel(server->address(), "localhost", op), &client_id);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(client_id, "alice");
  EXPECT_EQ(server->service->last_role(), Role::kOperator);
}

// A link with 300 ms of delay each way (a satellite or congested line) needs about 1.5 s
// for TCP, TLS 1.3 and HTTP/2's first SETTINGS. The channel must give its first attempt
// that long, not abandon handshake after handshake while its reconnect backoff grows.
TEST_F(TlsTest, ASlowLinkConnectsOnTheFirstAttempt) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  testing::RelayOptions options;
  options.upstream = server->address();
  options.up.delay = absl::Milliseconds(300);
  options.down.delay = absl::Milliseconds(300);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<testing::FaultRelay> relay,
                       testing::FaultRelay::Start(options));
  std::shared_ptr<grpc::Channel> channel = MakeChannel(relay->address(), "localhost", site_);
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(kRpcDeadlineSeconds)));
  EXPECT_EQ(relay->stats().connections, 1) << relay->stats().ToString();
  std::string client_id;
  EXPECT_TRUE(CallHello(channel, &client_id).ok());
  EXPECT_EQ(client_id, "hospital-a");
}

TEST_F(TlsTest, ClientCertificateFromAForeignCaIsRefusedAtTheHandshake) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles foreign_files,
                       pki_->IssueForeign("intruder", Role::kInstitution));
  const TlsMaterial foreign = UncheckedMaterial(foreign_files);

  grpc::Status status = CallHello(MakeChannel(server->address(), "", foreign), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // The server is unharmed: a good client still gets through.
  std::string client_id;
  status = CallHello(MakeChannel(server->address(), "", site_), &client_id);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(client_id, "hospital-a");
}

TEST_F(TlsTest, ClientWithoutACertificateIsRefused) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pki_->ca().cert_pem;  // trusts the server, presents nothing
  grpc::Status status =
      CallHello(grpc::CreateChannel(server->address(), grpc::SslCredentials(options)), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientChecksTheServerName) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(CallHello(MakeChannel(server->address(), "localhost", site_), nullptr).ok());
  grpc::Status status =
      CallHello(MakeChannel(server->address(), "coordinator.example.org", site_), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientRefusesAServerFromAForeignCa) {
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles foreign_files,
                       pki_->IssueForeign("coordinator-2", Role::kCoordinator));
  std::unique_ptr<RunningServer> server =
      StartServer(MakeServerCredentials(UncheckedMaterial(foreign_files)));
  ASSERT_NE(server, nullptr);
  grpc::Status status = CallHello(MakeChannel(server->address(), "", site_), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, ClientRefusesAServerWithoutTheServerRole) {
  // An institution certificate has no serverAuth usage (and no SANs): it cannot serve.
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(site_));
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles other, pki_->IssueNode("hospital-b", Role::kInstitution));
  ASSERT_OK_AND_ASSIGN(TlsMaterial client, LoadTlsMaterial(other, Role::kInstitution, absl::Now()));
  grpc::Status status = CallHello(MakeChannel(server->address(), "hospital-a", client), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(TlsTest, PeerIdentityNeedsATlsPeer) {
  std::unique_ptr<RunningServer> server = StartServer(grpc::InsecureServerCredentials());
  ASSERT_NE(server, nullptr);
  grpc::Status status = CallHello(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()), nullptr);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
}

// ---- TLS 1.3 only, checked with a raw OpenSSL client -------------------------------

struct RawOutcome {
  bool handshake_ok = false;
  int version = 0;
  int verify_result = -1;
  unsigned long error = 0;  // NOLINT(runtime/int): OpenSSL's type
  // The server answered the HTTP/2 preface with a SETTINGS frame: it accepted us.
  bool server_spoke_http2 = false;
  // A ServerHello arrived: the server accepted the ClientHello's protocol version.
  bool got_server_hello = false;
};

void RecordServerMessages(int write_p, int /*version*/, int content_type, const void* buf,
                          size_t len, SSL* /*ssl*/, void* arg) {
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
      static_cast<const unsigned char*>(buf)[0] == SSL3_MT_SERVER_HELLO) {
    static_cast<RawOutcome*>(arg)->got_server_hello = true;
  }
}

// Collects gRPC's log lines (the server's reason for a failed handshake) while alive.
class GrpcLogCapture {
 public:
  GrpcLogCapture() { gpr_set_log_function(&GrpcLogCapture::Log); }
  // nullptr restores gRPC's default (stderr) logger.
  ~GrpcLogCapture() { gpr_set_log_function(nullptr); }
  static std::string Lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  static void Log(gpr_log_func_args* args) {
    absl::MutexLock lock(&mu_);
    lines_ += args->message;
    lines_ += "\n";
  }
  static absl::Mutex mu_;
  static std::string lines_ ABSL_GUARDED_BY(mu_);
};
absl::Mutex GrpcLogCapture::mu_;
std::string GrpcLogCapture::lines_;

UniqueX509 X509FromPem(const std::string& pem) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return UniqueX509(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

UniqueEvpPkey KeyFromPem(const SecretBytes& pem) {
  UniqueBio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return UniqueEvpPkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// A client context that offers exactly [min_version, max_version]. It clears the
// SSL_OP_NO_* bits RequireTls13ForProcess put on every context of this process, so the
// client really offers TLS 1.2 when asked to.
UniqueSslCtx RawClientContext(int max_version, const TlsMaterial& identity) {
  UniqueSslCtx ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_clear_options(ctx.get(), SSL_OP_NO_SSL_MASK);
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  UniqueX509 cert = X509FromPem(identity.cert_pem);
  UniqueEvpPkey key = KeyFromPem(identity.key_pem);
  SSL_CTX_use_certificate(ctx.get(), cert.get());
  SSL_CTX_use_PrivateKey(ctx.get(), key.get());
  UniqueX509 ca = X509FromPem(identity.ca_cert_pem);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  return ctx;
}

// Handshakes over an already connected socket `fd` (closed on return).
RawOutcome RawHandshake(int fd, SSL_CTX* ctx, bool speak_http2) {
  RawOutcome out;
  // A peer that hangs up must fail the write, not kill the test binary.
  ::signal(SIGPIPE, SIG_IGN);
  // A guard against a hang, not a wait: every read returns as soon as data arrives.
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  ERR_clear_error();
  UniqueSsl ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  SSL_set_msg_callback(ssl.get(), RecordServerMessages);
  SSL_set_msg_callback_arg(ssl.get(), &out);
  if (SSL_connect(ssl.get()) != 1) {
    out.error = ERR_peek_last_error();
    ERR_clear_error();
    ::close(fd);
    return out;
  }
  out.handshake_ok = true;
  out.version = SSL_version(ssl.get());
  out.verify_result = static_cast<int>(SSL_get_verify_result(ssl.get()));
  if (speak_http2) {
    // Client preface and an empty SETTINGS frame; a server that accepted our
    // certificate answers with its own SETTINGS, one that did not sends an alert.
    static const char kPreface[] =
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    if (SSL_write(ssl.get(), kPreface, sizeof(kPreface) - 1) > 0) {
      unsigned char frame[9];
      size_t got = 0;
      while (got < sizeof(frame)) {
        const int n = SSL_read(ssl.get(), frame + got, static_cast<int>(sizeof(frame) - got));
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      out.server_spoke_http2 = got == sizeof(frame) && frame[3] == 0x04;
    }
    if (!out.server_spoke_http2) out.error = ERR_peek_last_error();
  }
  ERR_clear_error();
  ::close(fd);
  return out;
}

int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(TlsTest, RequireTls13ForProcessMarksEveryNewContext) {
  ASSERT_OK(RequireTls13ForProcess());
  ASSERT_OK(RequireTls13ForProcess());  // idempotent
  // A context made the way gRPC makes one still refuses everything below TLS 1.3.
  UniqueSslCtx ctx(SSL_CTX_new(TLS_method()));
  ASSERT_EQ(SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION), 1);
  const uint64_t options = SSL_CTX_get_options(ctx.get());
  EXPECT_NE(options & SSL_OP_NO_TLSv1_2, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1_1, 0u);
  EXPECT_NE(options & SSL_OP_NO_TLSv1, 0u);
  EXPECT_EQ(options & SSL_OP_NO_TLSv1_3, 0u);
}

TEST_F(TlsTest, ServerRefusesTls12) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  const int fd = ConnectLoopback(server->port);
  ASSERT_GE(fd, 0);
  GrpcLogCapture log;
  UniqueSslCtx ctx = RawClientContext(TLS1_2_VERSION, site_);
  RawOutcome outcome = RawHandshake(fd, ctx.get(), /*speak_http2=*/true);
  EXPECT_FALSE(outcome.handshake_ok) << "negotiated version " << outcome.version;
  // Refused at the ClientHello, before any certificate was looked at: no ServerHello
  // came back (gRPC hangs up without flushing its protocol_version alert).
  EXPECT_FALSE(outcome.got_server_hello);
  // And the server's own reason is the protocol version.
  EXPECT_THAT(GrpcLogCapture::Lines(), HasSubstr("unsupported protocol"));
}

TEST_F(TlsTest, ServerAcceptsTls13WithAFederationCertificate) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  const int fd = ConnectLoopback(server->port);
  ASSERT_GE(fd, 0);
  UniqueSslCtx ctx = RawClientContext(TLS1_3_VERSION, site_);
  RawOutcome outcome = RawHandshake(fd, ctx.get(), /*speak_http2=*/true);
  ASSERT_TRUE(outcome.handshake_ok) << ERR_reason_error_string(outcome.error);
  EXPECT_EQ(outcome.version, TLS1_3_VERSION);
  EXPECT_EQ(outcome.verify_result, X509_V_OK);
  EXPECT_TRUE(outcome.got_server_hello);
  EXPECT_TRUE(outcome.server_spoke_http2) << ERR_reason_error_string(outcome.error);
}

TEST_F(TlsTest, ServerRejectsTls13WithAForeignCertificate) {
  std::unique_ptr<RunningServer> server = StartServer(MakeServerCredentials(coordinator_));
  ASSERT_NE(server, nullptr);
  ASSERT_OK_AND_ASSIGN(v1::TlsFiles foreign_files,
                       pki_->IssueForeign("intruder", Role::kInstitution));
  const int fd = ConnectLoopback(server->port);
  ASSERT_GE(fd, 0);
  UniqueSslCtx ctx = RawClientContext(TLS1_3_VERSION, UncheckedMaterial(foreign_files));
  RawOutcome outcome = RawHandshake(fd, ctx.get(), /*speak_http2=*/true);
  // In TLS 1.3 the client finishes before the server checks its certificate; the
  // refusal arrives as an alert instead of the server's SETTINGS.
  EXPECT_TRUE(outcome.handshake_ok);
  EXPECT_EQ(outcome.version, TLS1_3_VERSION);
  EXPECT_FALSE(outcome.server_spoke_http2);
}

// Control for ServerRefusesTls12: the raw TLS 1.2 client does complete a TLS 1.2
// handshake with a server that allows it, so its failure above is the server's doing.
TEST_F(TlsTest, RawTls12ClientWorksAgainstAPermissiveServer) {
  ASSERT_OK(RequireTls13ForProcess());  // as in the real test, whatever ran before
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  UniqueSslCtx server_ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_clear_options(server_ctx.get(), SSL_OP_NO_SSL_MASK);
  SSL_CTX_set_min_proto_version(server_ctx.get(), TLS1_2_VERSION);
  UniqueX509 cert = X509FromPem(coordinator_.cert_pem);
  UniqueEvpPkey key = KeyFromPem(coordinator_.key_pem);
  ASSERT_EQ(SSL_CTX_use_certificate(server_ctx.get(), cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(server_ctx.get(), key.get()), 1);
  std::thread server_thread([&] {
    UniqueSsl ssl(SSL_new(server_ctx.get()));
    SSL_set_fd(ssl.get(), fds[1]);
    SSL_accept(ssl.get());
    SSL_shutdown(ssl.get());
    ERR_clear_error();
    ::close(fds[1]);
  });
  UniqueSslCtx ctx = RawClientContext(TLS1_2_VERSION, site_);
  RawOutcome outcome = RawHandshake(fds[0], ctx.get(), /*speak_http2=*/false);
  server_thread.join();
  ASSERT_TRUE(outcome.handshake_ok) << ERR_reason_error_string(outcome.error);
  EXPECT_EQ(outcome.version, TLS1_2_VERSION);
}

// The coordinator turns gRPC's tcp_read_chunks experiment off, keeping whatever else the
// operator set, and leaves the experiment as the operator named it if they did.
TEST(GrpcExperimentsTest, TurnsTcpReadChunksOffUnlessTheOperatorNamedIt) {
  EXPECT_EQ(GrpcExperimentsWithSmallReads(""), "-tcp_read_chunks");
  EXPECT_EQ(GrpcExperimentsWithSmallReads("  "), "-tcp_read_chunks");
  EXPECT_EQ(GrpcExperimentsWithSmallReads("tcp_rcv_lowat"), "tcp_rcv_lowat,-tcp_read_chunks");
  EXPECT_EQ(GrpcExperimentsWithSmallReads("tcp_read_chunks"), "tcp_read_chunks");
  EXPECT_EQ(GrpcExperimentsWithSmallReads("a, -tcp_read_chunks"), "a, -tcp_read_chunks");
  EXPECT_EQ(GrpcExperimentsWithSmallReads("tcp_read_chunks_x"),
            "tcp_read_chunks_x,-tcp_read_chunks");
}

}  // namespace
}  // namespace tessera::crypto
