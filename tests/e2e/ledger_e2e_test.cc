// The egress ledger end to end (client/ledger.h): real site daemons run a task against a
// coordinator hosted in this process — the real coordinator library and Federation service
// behind a real mTLS gRPC server — whose gRPC server interceptor measures, independently
// of the sites, every request message it received: the caller (from its TLS certificate),
// the method, the received message's size and the SHA-256 of its deterministic
// serialisation. The sites' ledgers must hold exactly those messages; `tessera-client audit
// verify` passes on the stores and on an exported bundle checked elsewhere with only the
// CA certificate, and fails naming the entry once one is flipped, deleted or moved. And
// `tessera-client audit provenance` checks the coordinator's round provenance against it.
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/site_store.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/grpc_services.h"
#include "crypto/hash.h"
#include "crypto/tls.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/support/server_interceptor.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/provenance.pb.h"
#include "proto/site_ledger.pb.h"
#include "rocksdb/db.h"
#include "tests/e2e/federation.h"
#include "tests/testing/raw_rocksdb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// What the coordinator received from one site: per method, the sizes and digests.
struct Received {
  std::map<std::string, uint64_t> messages;
  std::map<std::string, uint64_t> bytes;
  // Per kind (Hello, PushResult, FetchCertificates): SHA-256 of each distinct message -> its size.
  std::map<std::string, std::map<std::string, uint64_t>> distinct;
};

class Tally {
 public:
  void Add(const std::string& site, const std::string& method,
           const google::protobuf::MessageLite& m) {
    const std::string bytes = m.SerializeAsString();
    absl::MutexLock lock(&mu_);
    Received& r = sites_[site];
    ++r.messages[method];
    r.bytes[method] += m.ByteSizeLong();
    if (method != "PullWork") r.distinct[method][crypto::HashMessage(m)] = m.ByteSizeLong();
  }
  Received Of(const std::string& site) {
    absl::MutexLock lock(&mu_);
    return sites_[site];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, Received> sites_ ABSL_GUARDED_BY(mu_);
};

class Measuring final : public grpc::experimental::Interceptor {
 public:
  Measuring(grpc::experimental::ServerRpcInfo* info, Tally* tally) : info_(info), tally_(tally) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE)) {
      const std::string method = info_->method();
      auto peer = crypto::PeerIdentity(*info_->server_context()->auth_context());
      void* m = methods->GetRecvMessage();
      const std::string site = peer.ok() ? peer->node_id : "?";
      if (absl::EndsWith(method, "/Hello")) {
        tally_->Add(site, "Hello", *static_cast<v1::HelloRequest*>(m));
      } else if (absl::EndsWith(method, "/PullWork")) {
        // A raw method (coordinator::IsRawMethod): the request is its bytes.
        EXPECT_TRUE(coordinator::IsRawMethod(method));
        std::vector<grpc::Slice> slices;
        std::string wire;
        if (static_cast<grpc::ByteBuffer*>(m)->Dump(&slices).ok()) {
          for (const grpc::Slice& s : slices) {
            wire.append(reinterpret_cast<const char*>(s.begin()), s.size());
          }
        }
        v1::PullWorkRequest request;
        EXPECT_TRUE(request.ParseFromString(wire));
        tally_->Add(site, "PullWork", request);
      } else if (absl::EndsWith(method, "/PushResult")) {
        tally_->Add(site, "PushResult", *static_cast<v1::PushResultRequest*>(m));
      } else if (absl::EndsWith(method, "/FetchCertificates")) {
        tally_->Add(site, "FetchCertificates", *static_cast<v1::FetchCertificatesRequest*>(m));
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  Tally* const tally_;
};

class MeasuringFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MeasuringFactory(Tally* tally) : tally_(tally) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Measuring(info, tally_);
  }

 private:
  Tally* const tally_;
};

bool Finished(const v1::TaskRecord& task) {
  return task.state() == v1::TASK_COMPLETED || task.state() == v1::TASK_FAILED ||
         task.state() == v1::TASK_CANCELLED;
}

std::string LedgerKey(uint64_t sequence) {
  std::string key(8, '\0');
  key[7] = static_cast<char>(sequence);
  return key;
}

class AuditE2eTest : public FederationTest {
 protected:
  // The coordinator in this process, listening on 127.0.0.1 with the fixture's
  // coordinator certificate.
  absl::Status StartMeasuredCoordinator() {
    ASSIGN_OR_RETURN(
        crypto::TlsMaterial tls,
        crypto::LoadTlsMaterial(coordinator_tls(), crypto::Role::kCoordinator, absl::Now()));
    coordinator::CoordinatorOptions options;
    options.ca_cert_pem = tls.ca_cert_pem;
    ASSIGN_OR_RETURN(coordinator_,
                     coordinator::Coordinator::Create(coordinator::NewMemoryStore(),
                                                      common::Clock::Real(), options));
    service_ = coordinator::MakeFederationService(coordinator_.get(), 2);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", crypto::MakeServerCredentials(tls), &port);
    builder.RegisterService(service_.get());
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(std::make_unique<MeasuringFactory>(&tally_));
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) return absl::InternalError("cannot start the server");
    measured_address_ = absl::StrCat("127.0.0.1:", port);
    return absl::OkStatus();
  }

  void TearDown() override {
    FederationTest::TearDown();
    if (coordinator_ != nullptr) coordinator_->Shutdown();
    if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  }

  absl::StatusOr<CommandResult> Audit(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ClientBinary(), "audit"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  // A copy of `site`'s store (mode 0700), for damaging.
  std::string CopyStore(const std::string& site, const std::string& name) {
    std::string copy = temp().File(name);
    std::filesystem::copy(this->site(site).dir + "/store", copy,
                          std::filesystem::copy_options::recursive);
    EXPECT_EQ(::chmod(copy.c_str(), 0700), 0);
    return copy;
  }

  // Three sites run a two-round task through the measured coordinator (the task's id into
  // `*task_id`); audit verify passes while they run; then they stop.
  void RunTwoRoundTask(std::string* task_id) {
    ASSERT_OK(MakeTestPki());
    ASSERT_OK(SplitData());
    ASSERT_OK(StartMeasuredCoordinator());
    for (const std::string& name : Sites()) ASSERT_OK(StartClient(name, measured_address_));
    for (const std::string& name : Sites()) ASSERT_OK(WaitClientReady(name));
    ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
    spec.set_rounds(2);
    ASSERT_OK_AND_ASSIGN(v1::SubmitTaskResponse submitted,
                         coordinator_->SubmitTask("operator", spec));
    *task_id = submitted.task_id();
    ASSERT_OK(WaitFor(
        "the task to finish",
        [&] {
          auto task = coordinator_->GetTask(*task_id);
          return task.ok() && Finished(task->task());
        },
        absl::Seconds(120)));
    ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse done, coordinator_->GetTask(*task_id));
    ASSERT_EQ(done.task().state(), v1::TASK_COMPLETED) << done.task().state_reason();
    // While the daemons run: the store is read read-only.
    ASSERT_OK_AND_ASSIGN(CommandResult running,
                         Audit({"verify", "--config", site("hospital-b").config_path}));
    EXPECT_EQ(running.exit_code(), 0) << running.err;
    EXPECT_THAT(running.out, HasSubstr("\nok\n"));
    for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  }

  // `name`'s ledger, read directly, against what the coordinator measured it received;
  // the ledger's tally into `*ledger`.
  void ExpectLedgerHoldsWhatTheCoordinatorReceived(const std::string& name, Received* ledger) {
    const Site& s = site(name);
    {
      ASSERT_OK_AND_ASSIGN(auto store, client::OpenSiteStoreReadOnly(s.dir + "/store"));
      ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
      for (const v1::LedgerEntry& e : entries) {
        const std::string kind = e.kind() == v1::LEDGER_HELLO                ? "Hello"
                                 : e.kind() == v1::LEDGER_PULL_WORK          ? "PullWork"
                                 : e.kind() == v1::LEDGER_FETCH_CERTIFICATES ? "FetchCertificates"
                                                                             : "PushResult";
        ++ledger->messages[kind];
        ledger->bytes[kind] += e.byte_count();
        if (kind != "PullWork") ledger->distinct[kind][e.sent_sha256()] = e.byte_count();
      }
      // The PullWork after each answer was written ahead with it, in the answer's one
      // store write (EgressLedger::WriteNextAhead): the same time. Not after a decline or
      // an answer sent again (recorded when sent), nor when a checkpoint was due after the
      // request (written with its checkpoint when sent).
      ASSERT_OK_AND_ASSIGN(auto checkpoints, store->ListLedgerCheckpoints());
      std::set<uint64_t> checkpointed;
      for (const v1::LedgerCheckpoint& c : checkpoints) checkpointed.insert(c.sequence());
      std::set<std::string> answered;
      int ahead = 0;
      for (size_t i = 0; i + 1 < entries.size(); ++i) {
        const v1::LedgerEntry& answer = entries[i];
        const v1::LedgerEntry& pull = entries[i + 1];
        if (answer.kind() != v1::LEDGER_PUSH_RESULT) continue;
        if (!answered.insert(answer.sent_sha256()).second || answer.declined() ||
            pull.kind() != v1::LEDGER_PULL_WORK || checkpointed.contains(pull.sequence())) {
          continue;
        }
        EXPECT_EQ(pull.sent_unix_ms(), answer.sent_unix_ms()) << "entry " << pull.sequence();
        ++ahead;
      }
      EXPECT_GT(ahead, 10);
    }
    const Received received = tally_.Of(name);
    EXPECT_GT(received.messages.at("PushResult"), 10u);
    // Every distinct message the coordinator received is in the ledger with the same
    // SHA-256 and size, and every message the ledger records reached the coordinator. An
    // entry records an attempt: a call that failed before its bytes left (a channel still
    // connecting; a loaded machine) is retried with the same bytes, so the ledger may hold
    // more attempts of a message than the coordinator received, never fewer.
    // The site's first list named its two peers' certificates: one fetch, then none.
    EXPECT_EQ(received.messages.at("FetchCertificates"), 1u);
    for (const char* kind : {"Hello", "PushResult", "FetchCertificates"}) {
      SCOPED_TRACE(kind);
      EXPECT_EQ(ledger->distinct[kind], received.distinct.at(kind));
      EXPECT_GE(ledger->messages[kind], received.messages.at(kind));
    }
    // A PullWork in flight when the daemon stopped may or may not have been read.
    EXPECT_LE(received.messages.at("PullWork"), ledger->messages["PullWork"]);
    EXPECT_GE(received.messages.at("PullWork") + 1, ledger->messages["PullWork"]);
  }

  // audit verify and audit show of `name`'s store after task `task_id`, whose ledger tally
  // is `ledger`.
  void ExpectAuditShowsTheTask(const std::string& name, const std::string& task_id,
                               Received& ledger) {
    const Site& s = site(name);
    ASSERT_OK_AND_ASSIGN(CommandResult verify, Audit({"verify", "--config", s.config_path}));
    EXPECT_EQ(verify.exit_code(), 0) << verify.err;
    EXPECT_THAT(verify.out, HasSubstr("site:        " + name));
    EXPECT_THAT(verify.out, HasSubstr("\nok\n"));
    EXPECT_THAT(verify.out, Not(HasSubstr("unsigned")));  // the stop checkpoint seals all

    ASSERT_OK_AND_ASSIGN(CommandResult show,
                         Audit({"show", "--config", s.config_path, "--task", task_id, "--json"}));
    ASSERT_EQ(show.exit_code(), 0) << show.err;
    v1::AuditSummary summary;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(show.out, &summary).ok()) << show.out;
    ASSERT_EQ(summary.tasks_size(), 1);
    EXPECT_EQ(summary.tasks(0).bytes(), ledger.bytes["PushResult"]);  // every attempt sent
    EXPECT_THAT(summary.tasks(0).stages(), Contains("fit"));
    ASSERT_GT(summary.tasks(0).sessions_size(), 0);
    const v1::AuditSession& last = *summary.tasks(0).sessions().rbegin();
    EXPECT_THAT(last.survivors(), ::testing::ElementsAre("hospital-a", "hospital-b", "hospital-c"));
    EXPECT_EQ(last.state(), "SITE_SESSION_COMPLETED");
    EXPECT_FALSE(last.consistency_signature().empty());
    // Each session's masked input as the audit names it (from the session record, which
    // keeps only its digest once the session moved past it) is a message the ledger holds.
    int masked = 0;
    for (const v1::AuditSession& session : summary.tasks(0).sessions()) {
      if (session.masked_input_request_sha256().empty()) continue;
      ++masked;
      EXPECT_TRUE(ledger.distinct["PushResult"].contains(session.masked_input_request_sha256()))
          << session.session();
    }
    EXPECT_GT(masked, 0);
    ASSERT_OK_AND_ASSIGN(CommandResult text, Audit({"show", "--config", s.config_path}));
    EXPECT_THAT(text.out, HasSubstr(absl::StrCat("task ", task_id, ": ")));
  }

  // Flipping one byte of hospital-a's ledger, deleting an entry, moving one: verify fails
  // naming the entry.
  void ExpectVerifyNamesTheDamagedEntry() {
    const std::string ca = pki()->ca_cert_path();
    {
      const std::string dir = CopyStore("hospital-a", "flipped");
      std::string value;
      testing::WithRawDb(dir, [&](rocksdb::DB* db, testing::RawFamilies& f) {
        ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["ledger"], LedgerKey(5), &value).ok());
      });
      v1::LedgerEntry entry;
      ASSERT_TRUE(entry.ParseFromString(value));
      const size_t at = value.find(entry.sent_sha256());
      ASSERT_NE(at, std::string::npos);
      value[at + 7] ^= 0x01;
      testing::PutRaw(dir, "ledger", LedgerKey(5), value);
      ASSERT_OK_AND_ASSIGN(CommandResult r, Audit({"verify", "--store", dir, "--ca", ca}));
      EXPECT_EQ(r.exit_code(), 1);
      EXPECT_THAT(r.err, HasSubstr("entry 5: changed"));
    }
    {
      const std::string dir = CopyStore("hospital-a", "deleted");
      testing::DeleteRaw(dir, "ledger", LedgerKey(7));
      ASSERT_OK_AND_ASSIGN(CommandResult r, Audit({"verify", "--store", dir, "--ca", ca}));
      EXPECT_EQ(r.exit_code(), 1);
      EXPECT_THAT(r.err, HasSubstr("entry 7: missing"));
    }
    {
      const std::string dir = CopyStore("hospital-a", "reordered");
      std::string three, four;
      testing::WithRawDb(dir, [&](rocksdb::DB* db, testing::RawFamilies& f) {
        ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["ledger"], LedgerKey(3), &three).ok());
        ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), f["ledger"], LedgerKey(4), &four).ok());
      });
      testing::PutRaw(dir, "ledger", LedgerKey(3), four);
      testing::PutRaw(dir, "ledger", LedgerKey(4), three);
      ASSERT_OK_AND_ASSIGN(CommandResult r, Audit({"verify", "--store", dir, "--ca", ca}));
      EXPECT_EQ(r.exit_code(), 1);
      EXPECT_THAT(r.err, HasSubstr("entry 3 holds the record of entry 4"));
    }
  }

  // hospital-a's exported bundle verifies in another directory with only the CA
  // certificate; a bundle with one entry changed does not.
  void ExpectTheBundleVerifiesElsewhere() {
    const std::string ca = pki()->ca_cert_path();
    const Site& a = site("hospital-a");
    const std::string bundle = temp().File("hospital-a.ledger");
    ASSERT_OK_AND_ASSIGN(CommandResult exported,
                         Audit({"export", "--config", a.config_path, "--out", bundle}));
    ASSERT_EQ(exported.exit_code(), 0) << exported.err;
    const std::string elsewhere = temp().File("dpo");
    std::filesystem::create_directory(elsewhere);
    std::filesystem::copy(bundle, elsewhere + "/bundle");
    std::filesystem::copy(ca, elsewhere + "/ca.crt");
    ASSERT_OK_AND_ASSIGN(CommandResult checked, Audit({"verify", "--bundle", elsewhere + "/bundle",
                                                       "--ca", elsewhere + "/ca.crt"}));
    EXPECT_EQ(checked.exit_code(), 0) << checked.err;
    EXPECT_THAT(checked.out, HasSubstr("site:        hospital-a"));
    v1::LedgerBundle tampered;
    ASSERT_TRUE(tampered.ParseFromString(ReadFileOrEmpty(bundle)));
    tampered.mutable_entries(5)->set_byte_count(tampered.entries(5).byte_count() + 1);
    ASSERT_OK(common::WriteFileAtomic(elsewhere + "/tampered", tampered.SerializeAsString()));
    ASSERT_OK_AND_ASSIGN(
        CommandResult refused,
        Audit({"verify", "--bundle", elsewhere + "/tampered", "--ca", elsewhere + "/ca.crt"}));
    EXPECT_EQ(refused.exit_code(), 1);
    EXPECT_THAT(refused.err, HasSubstr("entry 6: changed"));
  }

  Tally tally_;
  std::unique_ptr<coordinator::Coordinator> coordinator_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string measured_address_;
};

TEST_F(AuditE2eTest, LedgerHoldsExactlyWhatTheCoordinatorReceivedAndAuditVerifies) {
  std::string task_id;
  ASSERT_NO_FATAL_FAILURE(RunTwoRoundTask(&task_id));
  for (const std::string& name : Sites()) {
    SCOPED_TRACE(name);
    Received ledger;
    ASSERT_NO_FATAL_FAILURE(ExpectLedgerHoldsWhatTheCoordinatorReceived(name, &ledger));
    ASSERT_NO_FATAL_FAILURE(ExpectAuditShowsTheTask(name, task_id, ledger));
  }
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyNamesTheDamagedEntry());
  ASSERT_NO_FATAL_FAILURE(ExpectTheBundleVerifiesElsewhere());
}

// The coordinator's round provenance checked by each site against its own ledger: every
// site's check of rounds 0 and 1 passes; a record whose signature for a site is another's
// fails the CA check naming the session; the byte-for-byte comparison with the signature a
// site sent catches what the CA check cannot (another site's ledger read as this site's).
TEST_F(AuditE2eTest, ProvenanceOfEachRoundChecksAgainstEverySitesLedger) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(1);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  ASSERT_OK_AND_ASSIGN(v1::TaskRecord done, WaitForTask(task_id, Finished));
  ASSERT_EQ(done.state(), v1::TASK_COMPLETED) << done.state_reason();
  std::map<int, std::string> saved;
  for (int round : {0, 1}) {
    saved[round] = temp().File(absl::StrCat("round", round, ".provenance"));
    ASSERT_OK_AND_ASSIGN(CommandResult r,
                         Console({"tasks", "provenance"},
                                 {task_id, "--round", absl::StrCat(round), "--out", saved[round]}));
    ASSERT_EQ(r.exit_code(), 0) << r.out << r.err;
  }
  // While the daemons run (read-only opens), for every site and round.
  for (const std::string& name : Sites()) {
    for (int round : {0, 1}) {
      SCOPED_TRACE(absl::StrCat(name, " round ", round));
      ASSERT_OK_AND_ASSIGN(CommandResult r,
                           Audit({"provenance", saved[round], "--config", site(name).config_path}));
      EXPECT_EQ(r.exit_code(), 0) << r.out << r.err;
      EXPECT_THAT(r.out, HasSubstr("site:       " + name));
      EXPECT_THAT(r.out, HasSubstr("\nok\n"));
      EXPECT_THAT(r.out, Not(HasSubstr("mismatch")));
    }
  }
  ASSERT_OK_AND_ASSIGN(CommandResult fit, Audit({"provenance", saved[1], "--config",
                                                 site("hospital-b").config_path, "--json"}));
  ASSERT_EQ(fit.exit_code(), 0) << fit.err;
  v1::ProvenanceCheck check;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(fit.out, &check).ok()) << fit.out;
  EXPECT_TRUE(check.ok());
  ASSERT_GE(check.sessions_size(), 1);
  EXPECT_EQ(check.sessions(0).session(), "task-1/r1/fit/a1");
  EXPECT_EQ(check.sessions(0).outcome(), v1::ProvenanceSessionCheck::OK);
  EXPECT_THAT(check.sessions(0).detail(), HasSubstr("signature is the one this site sent"));

  // hospital-b's signature replaced by hospital-a's: the CA check names the session.
  v1::RoundProvenance record;
  ASSERT_OK(common::LoadProtoFile(saved[1], &record));
  v1::SessionProvenance* session = record.mutable_sessions(0);
  ASSERT_EQ(session->signatures(1).client_id(), "hospital-b");
  session->mutable_signatures(1)->set_signature(session->signatures(0).signature());
  const std::string swapped = temp().File("swapped.provenance");
  ASSERT_OK(common::WriteFileAtomic(swapped, common::ToTextProto(record)));
  ASSERT_OK_AND_ASSIGN(CommandResult refused,
                       Audit({"provenance", swapped, "--config", site("hospital-b").config_path}));
  EXPECT_EQ(refused.exit_code(), 1);
  EXPECT_THAT(refused.err, AllOf(HasSubstr("does not verify"), HasSubstr("task-1/r1/fit/a1"),
                                 HasSubstr("hospital-b")));

  // A record that verifies, against a ledger whose signature is not hospital-b's.
  ASSERT_OK_AND_ASSIGN(CommandResult other,
                       Audit({"provenance", saved[1], "--store", site("hospital-a").dir + "/store",
                              "--ca", pki()->ca_cert_path(), "--site", "hospital-b"}));
  EXPECT_EQ(other.exit_code(), 1);
  EXPECT_THAT(other.out, HasSubstr("mismatch  task-1/r1/fit/a1: the signature the coordinator "
                                   "holds for hospital-b in task-1/r1/fit/a1 is not the one "
                                   "this site sent"));
  EXPECT_THAT(other.err, HasSubstr("does not match this site's ledger"));

  // A file that does not parse is named with its line.
  const std::string bad = temp().File("bad.provenance");
  ASSERT_OK(common::WriteFileAtomic(bad, "task_id: \"task-1\"\nround: [\n"));
  ASSERT_OK_AND_ASSIGN(CommandResult unparsed,
                       Audit({"provenance", bad, "--config", site("hospital-b").config_path}));
  EXPECT_EQ(unparsed.exit_code(), 2);
  EXPECT_THAT(unparsed.err, HasSubstr(bad + ":2"));
}

TEST_F(AuditE2eTest, AuditHelpListsVerify) {
  ASSERT_OK_AND_ASSIGN(CommandResult help, Audit({"--help"}));
  EXPECT_EQ(help.exit_code(), 0);
  EXPECT_THAT(help.out, HasSubstr("verify"));
  EXPECT_THAT(help.out, HasSubstr("export"));
  EXPECT_THAT(help.out, HasSubstr("provenance"));
}

}  // namespace
}  // namespace tessera::e2e
