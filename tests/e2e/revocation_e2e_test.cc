// Certificate revocation end to end (issue 10, docs/pki.md), with real processes, real
// certificates made with the `tessera pki` CLI and real gRPC:
//
//   RevokedSiteIsRefusedAtHandshakeAtNextCallAndInSecureAggregation: four sites train; the
//     operator revokes hospital-d mid-federation with `tessera pki revoke`. The coordinator
//     re-reads its CRL file and refuses hospital-d at its next call on a connection opened
//     before the revocation and at the TLS handshake of a new connection; the task goes on
//     without it; every honest site receives the CA-signed CRL. Then a cheating coordinator
//     (which ignores the CRL) invites hospital-d into a secure-aggregation session: the
//     honest sites refuse its key advertisement ("revoked") and no sum is released.
//   ExpiredWhileConnectedGetsNoWorkItem: a certificate valid for a few more seconds connects;
//     after it expires its open long-poll and its next call are refused ("expired at").
//   RenewWithoutStoppingTheFederationThenRevokeTheOldCertificate: during a task, a site
//     runs `tessera-client renew`, the operator signs its CSR, the site installs the new
//     certificate and key and restarts its daemon; the task goes on to the end; the old
//     serial is revoked (by serial: the name is ambiguous now) and refused, the new one
//     keeps working.
//   BadCrlFilesAreRefused: garbage, another CA's CRL: the coordinator refuses to start
//     naming the file; a bad new CRL while running is refused with a log, the old one kept.
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/secure_stage.h"
#include "crypto/crl.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/federation.grpc.pb.h"
#include "proto/validation.h"
#include "secagg/protocol.h"
#include "secagg/stage_encoding.h"
#include "tests/e2e/cheating_coordinator.h"
#include "tests/e2e/federation.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using testing::Eventually;
using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kFourSites = {"hospital-a", "hospital-b", "hospital-c",
                                             "hospital-d"};
constexpr char kRevoked[] = "hospital-d";

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = absl::Seconds(10)) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

grpc::Status Hello(v1::Federation::Stub* stub) {
  v1::HelloRequest request;
  request.set_client_version("e2e");
  request.add_dataset_ids("breast_cancer");
  v1::HelloResponse response;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  return stub->Hello(&ctx, request, &response);
}

grpc::Status Pull(v1::Federation::Stub* stub, v1::PullWorkResponse* response,
                  absl::Duration d = absl::Seconds(10)) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, d);
  return stub->PullWork(&ctx, v1::PullWorkRequest(), response);
}

class E2eRevocationTest : public FederationTest {
 protected:
  std::string CaDir() { return temp().File("ca"); }
  std::string CrlPath() { return CaDir() + "/crl.pem"; }

  // The PKI through the CLI, an empty CRL to start with (`tessera pki crl`), and the
  // coordinator configured with it: a short long-poll and CRL poll keep the test short.
  void SetUpFederation(const std::vector<std::string>& sites) {
    ASSERT_OK(MakeCliPki(sites));
    ASSERT_OK(SplitData(sites));
    ASSERT_OK_AND_ASSIGN(CommandResult crl,
                         RunCommand({ConsoleBinary(), "pki", "crl", "--ca-dir", CaDir()}));
    ASSERT_EQ(crl.exit_code(), 0) << crl.err;
    edit_coordinator_config_ = [this](v1::CoordinatorConfig* config) {
      config->set_crl_file(CrlPath());
      config->set_crl_poll_seconds(1);
      config->set_long_poll_seconds(3);
    };
  }

  absl::StatusOr<std::unique_ptr<v1::Federation::Stub>> StubAs(const std::string& name) {
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                     ChannelAs(site(name).tls, crypto::Role::kInstitution));
    return v1::Federation::NewStub(channel);
  }

  // One secure-aggregation session of the statistics stage over `cohort`, run by `cheater`
  // with what an honest coordinator would propose (threshold floor(2n/3) + 1).
  coordinator::SecureStageResult CheatingSession(CheatingCoordinator* cheater,
                                                 std::vector<std::string> cohort) {
    absl::StatusOr<v1::TaskSpec> spec = LoadExampleTask();
    EXPECT_OK(spec.status());
    // Other columns than the task of phase 1 pooled: the sites' once-only rule
    // (ALREADY_CONTRIBUTED) is not what stops this session.
    spec->mutable_dataset()->mutable_features()->RemoveLast();
    proto::ApplyTaskDefaults(&*spec);
    const uint32_t n = static_cast<uint32_t>(cohort.size());
    coordinator::SecureStageRequest r;
    r.task_id = "revoked-peer";
    r.round = 0;
    r.stage = v1::STAGE_STATISTICS;
    r.attempt = 1;
    r.cohort = std::move(cohort);
    r.first_item.set_task_id(r.task_id);
    r.first_item.set_stage(v1::STAGE_STATISTICS);
    *r.first_item.mutable_spec() = *spec;
    r.first_item.set_spec_hash(crypto::HashTaskSpec(*spec));
    absl::StatusOr<v1::SecAggEncoding> encoding =
        secagg::StageEncoding(*spec, v1::STAGE_STATISTICS, n);
    EXPECT_OK(encoding.status());
    if (encoding.ok()) r.encoding = *encoding;
    r.threshold = std::max(secagg::SafeThreshold(n, std::nullopt), spec->min_clients());
    r.first_step_deadline = absl::Seconds(60);
    r.step_deadline = absl::Seconds(30);
    return cheater->RunSession(r);
  }

  // With the federation's coordinator and sites stopped, a coordinator that ignores the
  // CRL invites hospital-d to a session with the three others: each of them refuses its
  // advertisement as revoked, and the session does not complete.
  void ExpectSitesRefuseRevokedPeerFromCheatingCoordinator() {
    for (const std::string& name : kFourSites) ASSERT_OK(StopClient(name));
    ASSERT_OK(StopCoordinator());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CheatingCoordinator> cheater,
                         CheatingCoordinator::Start(coordinator_tls()));
    for (const std::string& name : kFourSites)
      ASSERT_OK(StartClient(name, cheater->address(), {}, 2));
    for (const std::string& name : kFourSites) ASSERT_OK(WaitClientReady(name));
    coordinator::SecureStageResult result = CheatingSession(cheater.get(), kFourSites);
    std::string drops;
    for (const std::string& d : result.drops) drops += d + "\n";
    EXPECT_FALSE(result.completed) << drops;
    for (const std::string name : {"hospital-a", "hospital-b", "hospital-c"}) {
      EXPECT_THAT(site(name).process->Log(),
                  ::testing::AllOf(HasSubstr("advertisement of hospital-d is refused"),
                                   HasSubstr("revoked")))
          << name;
      EXPECT_THAT(drops, HasSubstr(name + ": "));
    }
    for (const std::string& name : kFourSites) ASSERT_OK(StopClient(name));
    cheater->Shutdown();
  }
};

TEST_F(E2eRevocationTest, RevokedSiteIsRefusedAtHandshakeAtNextCallAndInSecureAggregation) {
  SetUpFederation(kFourSites);
  ASSERT_OK(StartCoordinator());
  for (const std::string& name : kFourSites) ASSERT_OK(StartClient(name));
  for (const std::string& name : kFourSites) ASSERT_OK(WaitClientReady(name));
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  // Rounds take ~0.07-0.3 s: enough of them that the task is still running when the
  // revocation takes effect (the CRL is polled every second), however fast the rounds.
  spec.set_rounds(80);
  // The session hospital-d is in when it is revoked waits for its answer until the step's
  // deadline (it never answers again): keep that short.
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(8);
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(spec));
  // Mid-federation: training has started with all four sites.
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord running, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return t.last_committed_round() >= 1;
                       }));
  // A connection of hospital-d's, opened and used before the revocation.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<v1::Federation::Stub> live, StubAs(kRevoked));
  ASSERT_TRUE(Hello(live.get()).ok());

  ASSERT_OK_AND_ASSIGN(CommandResult revoke,
                       RunCommand({ConsoleBinary(), "pki", "revoke", kRevoked, "--ca-dir", CaDir(),
                                   "--reason", "key-compromise"}));
  ASSERT_EQ(revoke.exit_code(), 0) << revoke.err;
  EXPECT_THAT(revoke.out, HasSubstr("of hospital-d (key-compromise)"));

  // The coordinator picks the new CRL up by itself and drops hospital-d's sessions.
  ASSERT_TRUE(Eventually(
      [&] { return coordinator()->Log().find("event=crl_reloaded") != std::string::npos; },
      absl::Seconds(20)))
      << coordinator()->LogTail();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse at_revocation, GetTask(task_id));
  ASSERT_EQ(at_revocation.task().state(), v1::TASK_RUNNING)
      << "the task ended before the revocation took effect";
  // (1) At its next call on the live connection.
  v1::PullWorkResponse pulled;
  grpc::Status on_live = Pull(live.get(), &pulled);
  EXPECT_EQ(on_live.error_code(), grpc::StatusCode::UNAUTHENTICATED) << on_live.error_message();
  EXPECT_THAT(on_live.error_message(), HasSubstr("revoked"));
  EXPECT_FALSE(pulled.has_work());
  // (2) At the TLS handshake of a new connection (a new channel, new credentials).
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<v1::Federation::Stub> fresh, StubAs(kRevoked));
  grpc::Status on_new = Hello(fresh.get());
  EXPECT_EQ(on_new.error_code(), grpc::StatusCode::UNAVAILABLE) << on_new.error_message();
  EXPECT_THAT(coordinator()->Log(), HasSubstr("event=handshake_refused peer=hospital-d"));
  // An honest site still connects.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<v1::Federation::Stub> honest, StubAs("hospital-a"));
  EXPECT_TRUE(Hello(honest.get()).ok());

  // The task finishes with the other three; no round committed after the revocation has
  // hospital-d among its participants.
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.ShortDebugString();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse detail, GetTask(task_id));
  ASSERT_FALSE(detail.rounds().empty());
  EXPECT_THAT(detail.rounds(detail.rounds_size() - 1).fit_participants(),
              Not(::testing::Contains(std::string(kRevoked))));
  // Every honest site took the CA-signed CRL from the coordinator and kept it.
  for (const std::string name : {"hospital-a", "hospital-b", "hospital-c"}) {
    EXPECT_TRUE(Eventually(
        [&] { return site(name).process->Log().find("event=crl_updated") != std::string::npos; },
        absl::Seconds(20)))
        << name;
  }

  // Phase 2: a coordinator that ignores the CRL still invites hospital-d.
  ExpectSitesRefuseRevokedPeerFromCheatingCoordinator();
}

TEST_F(E2eRevocationTest, ExpiredWhileConnectedGetsNoWorkItem) {
  SetUpFederation({"hospital-a"});
  ASSERT_OK(StartCoordinator());
  // A certificate of the federation CA (the CLI's, read from its directory) issued a day
  // ago less a few seconds, for one day: it expires a few seconds from now.
  const absl::Time issued_at = absl::Now() - absl::Hours(24) + absl::Seconds(6);
  crypto::CertificateAuthority ca;
  {
    ASSERT_OK_AND_ASSIGN(std::string key, common::ReadFile(CaDir() + "/ca.key"));
    ca.key_pem = crypto::SecretBytes(std::move(key));
    ASSERT_OK_AND_ASSIGN(ca.cert_pem, common::ReadFile(CaDir() + "/ca.crt"));
  }
  ASSERT_OK_AND_ASSIGN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSERT_OK_AND_ASSIGN(std::string csr, crypto::CreateCsr(key, "hospital-x"));
  crypto::SignOptions sign;
  sign.validity_days = 1;
  ASSERT_OK_AND_ASSIGN(std::string cert, crypto::SignCsr(ca, csr, sign, issued_at));
  ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo info, crypto::ParseCertificate(cert));
  const std::string dir = temp().File("hospital-x");
  ASSERT_OK(common::MakeDirectories(dir, 0700));
  v1::TlsFiles tls;
  tls.set_ca_cert(CaDir() + "/ca.crt");
  tls.set_cert(dir + "/x.crt");
  tls.set_key(dir + "/x.key");
  ASSERT_OK(common::WriteFileAtomic(tls.cert(), cert));
  ASSERT_OK(common::WriteNewFile(tls.key(), key.view(), 0600));
  ASSERT_GT(info.not_after, absl::Now());

  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       ChannelAs(tls, crypto::Role::kInstitution));
  std::unique_ptr<v1::Federation::Stub> stub = v1::Federation::NewStub(channel);
  ASSERT_TRUE(Hello(stub.get()).ok()) << "the certificate expired before the test could use it";
  // A long-poll open across the expiry is refused when it returns, not answered.
  v1::PullWorkResponse pulled;
  grpc::Status across = Pull(stub.get(), &pulled, absl::Seconds(20));
  while (across.ok() && absl::Now() <= info.not_after + absl::Seconds(1)) {
    across = Pull(stub.get(), &pulled, absl::Seconds(20));
  }
  EXPECT_EQ(across.error_code(), grpc::StatusCode::UNAUTHENTICATED) << across.error_message();
  EXPECT_THAT(across.error_message(), HasSubstr("expired at"));
  EXPECT_FALSE(pulled.has_work());
  // And every later call on the same connection.
  grpc::Status again = Hello(stub.get());
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAUTHENTICATED) << again.error_message();
  EXPECT_THAT(again.error_message(), HasSubstr("hospital-x"));
}

TEST_F(E2eRevocationTest, RenewWithoutStoppingTheFederationThenRevokeTheOldCertificate) {
  SetUpFederation(kFourSites);
  ASSERT_OK(StartCoordinator());
  for (const std::string& name : kFourSites) ASSERT_OK(StartClient(name));
  for (const std::string& name : kFourSites) ASSERT_OK(WaitClientReady(name));
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(8);
  ASSERT_OK_AND_ASSIGN(std::string task_id, SubmitTask(spec));
  ASSERT_OK(WaitForTask(task_id, [](const v1::TaskRecord& t) {
              return t.last_committed_round() >= 1;
            }).status());

  Site& a = site("hospital-a");
  ASSERT_OK_AND_ASSIGN(CommandResult renew,
                       RunCommand({ClientBinary(), "renew", "--config", a.config_path}));
  ASSERT_EQ(renew.exit_code(), 0) << renew.err;
  const std::string base = a.dir + "/hospital-a";
  // Never overwrites: a second renew is refused while the first is under way.
  ASSERT_OK_AND_ASSIGN(CommandResult again,
                       RunCommand({ClientBinary(), "renew", "--config", a.config_path}));
  EXPECT_NE(again.exit_code(), 0);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  ASSERT_OK_AND_ASSIGN(CommandResult sign,
                       RunCommand({ConsoleBinary(), "pki", "sign", "--ca-dir", CaDir(), "--csr",
                                   base + ".renew.csr", "--role", "institution"}));
  ASSERT_EQ(sign.exit_code(), 0) << sign.err;
  // The site installs the new certificate and key (keeping the old ones aside) and restarts
  // its daemon; the others go on meanwhile.
  ASSERT_OK_AND_ASSIGN(std::string old_pem, common::ReadFile(a.tls.cert()));
  ASSERT_OK_AND_ASSIGN(crypto::CertificateInfo old_cert, crypto::ParseCertificate(old_pem));
  ASSERT_EQ(std::rename(a.tls.cert().c_str(), (base + ".old.crt").c_str()), 0);
  ASSERT_EQ(std::rename(a.tls.key().c_str(), (base + ".old.key").c_str()), 0);
  ASSERT_EQ(std::rename((base + ".renew.crt").c_str(), a.tls.cert().c_str()), 0);
  ASSERT_EQ(std::rename((base + ".renew.key").c_str(), a.tls.key().c_str()), 0);
  ASSERT_OK(StopClient("hospital-a"));
  ASSERT_OK(StartClient("hospital-a"));
  ASSERT_OK(WaitClientReady("hospital-a"));

  // The old serial: by name the revocation is ambiguous (two unrevoked certificates).
  ASSERT_OK_AND_ASSIGN(CommandResult by_name, RunCommand({ConsoleBinary(), "pki", "revoke",
                                                          "hospital-a", "--ca-dir", CaDir()}));
  EXPECT_NE(by_name.exit_code(), 0);
  EXPECT_THAT(by_name.err, HasSubstr(old_cert.serial_hex));
  ASSERT_OK_AND_ASSIGN(CommandResult by_serial,
                       RunCommand({ConsoleBinary(), "pki", "revoke", old_cert.serial_hex,
                                   "--ca-dir", CaDir(), "--reason", "superseded"}));
  ASSERT_EQ(by_serial.exit_code(), 0) << by_serial.err;

  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, [](const v1::TaskRecord& t) {
                         return t.state() == v1::TASK_COMPLETED || t.state() == v1::TASK_FAILED;
                       }));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.ShortDebugString();
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse detail, GetTask(task_id));
  // The renewed site took part in the last round, under its new certificate.
  EXPECT_THAT(detail.rounds(detail.rounds_size() - 1).fit_participants(),
              ::testing::Contains(std::string("hospital-a")));
  // The old certificate is refused now (a new connection: at the handshake).
  ASSERT_TRUE(
      Eventually([&] { return coordinator()->Log().find("newly_revoked=1") != std::string::npos; },
                 absl::Seconds(20)));
  v1::TlsFiles old_tls = a.tls;
  old_tls.set_cert(base + ".old.crt");
  old_tls.set_key(base + ".old.key");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> old_channel,
                       ChannelAs(old_tls, crypto::Role::kInstitution));
  std::unique_ptr<v1::Federation::Stub> old_stub = v1::Federation::NewStub(old_channel);
  EXPECT_FALSE(Hello(old_stub.get()).ok());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<v1::Federation::Stub> new_stub, StubAs("hospital-a"));
  EXPECT_TRUE(Hello(new_stub.get()).ok());
}

TEST_F(E2eRevocationTest, BadCrlFilesAreRefused) {
  SetUpFederation({"hospital-a"});
  ASSERT_OK_AND_ASSIGN(std::string good, common::ReadFile(CrlPath()));
  // Garbage: the coordinator does not start, and says which file.
  ASSERT_OK(common::WriteFileAtomic(CrlPath(), "not a CRL\n"));
  EXPECT_FALSE(StartCoordinator().ok());
  EXPECT_THAT(coordinator()->Log(), HasSubstr(CrlPath()));
  EXPECT_THAT(coordinator()->Log(), HasSubstr("not a PEM X.509 CRL"));
  // Another CA's CRL (same federation name, other key).
  ASSERT_OK(common::MakeDirectories(temp().File("other-ca"), 0700));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<testing::TestPki> other,
                       testing::TestPki::Create(temp().File("other-ca"), "e2e"));
  ASSERT_OK_AND_ASSIGN(std::string foreign,
                       crypto::CreateCrl(other->ca(), {}, 99, absl::Now(), absl::Hours(24)));
  ASSERT_OK(common::WriteFileAtomic(CrlPath(), foreign));
  EXPECT_FALSE(StartCoordinator().ok());
  EXPECT_THAT(coordinator()->Log(), HasSubstr("not signed by the federation CA"));
  // The good one: it starts; a bad replacement is refused and the old one kept.
  ASSERT_OK(common::WriteFileAtomic(CrlPath(), good));
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(common::WriteFileAtomic(CrlPath(), foreign));
  EXPECT_TRUE(Eventually(
      [&] { return coordinator()->Log().find("event=crl_refused") != std::string::npos; },
      absl::Seconds(20)))
      << coordinator()->LogTail();
  EXPECT_THAT(coordinator()->Log(), HasSubstr("kept_number=1"));
  ASSERT_OK(StartClients({"hospital-a"}));
}

}  // namespace
}  // namespace tessera::e2e
