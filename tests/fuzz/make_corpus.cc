// Writes the fixed files the fuzz targets load (tests/fuzz/data) and their seed corpora
// (tests/fuzz/corpus/<target>/), all from real things: a test PKI (tests/testing/test_pki.h),
// a secure-aggregation session run to completion, the repository's example task files,
// daemon configs and datasets, and stores written through their own APIs.
//
//   make_corpus <repository root>
//
// Replaces tests/fuzz/data and every tests/fuzz/corpus/<target> it makes. Run it again only
// when a format changes (the data are fixed so that the corpora stay meaningful); the
// regression inputs (tests/fuzz/regressions) are left alone. Test tool, never installed.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/ledger.h"
#include "client/site_store.h"
#include "common/files.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "coordinator/store.h"
#include "crypto/crl.h"
#include "crypto/pki.h"
#include "proto/site_approval.pb.h"
#include "proto/site_budget.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/site_state.pb.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/raw_store.h"
#include "tests/fuzz/secagg_world.h"
#include "tests/secagg/secagg_harness.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::fuzz {
namespace {

namespace fs = std::filesystem;
using secagg::SecAggClient;
using secagg::SecAggServer;

struct Out {
  std::string data;    // tests/fuzz/data
  std::string corpus;  // tests/fuzz/corpus
  std::string root;    // the repository

  absl::Status Seed(const std::string& target, const std::string& name, std::string_view bytes) {
    const std::string dir = absl::StrCat(corpus, "/", target);
    RETURN_IF_ERROR(common::MakeDirectories(dir));
    return common::WriteFileAtomic(absl::StrCat(dir, "/", name), bytes);
  }
  absl::Status Data(const std::string& name, std::string_view bytes) {
    return common::WriteFileAtomic(absl::StrCat(data, "/", name), bytes);
  }
};

// ---- PKI, the session and the secagg corpora

struct Pki {
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<testing::TestPki> pki;
  std::map<std::string, std::string> cert, key;  // by node id
};

absl::Status Issue(Pki& p, const std::string& id, crypto::Role role,
                   absl::StatusOr<v1::TlsFiles> files) {
  RETURN_IF_ERROR(files.status());
  ASSIGN_OR_RETURN(p.cert[id], common::ReadFile(files->cert()));
  ASSIGN_OR_RETURN(p.key[id], common::ReadFile(files->key()));
  return absl::OkStatus();
}

absl::StatusOr<Pki> MakePki() {
  Pki p;
  p.dir = std::make_unique<testing::TempDir>();
  ASSIGN_OR_RETURN(p.pki, testing::TestPki::Create(p.dir->path()));
  for (const char* id : {"site-00", "site-01", "site-02", "site-03"}) {
    RETURN_IF_ERROR(
        Issue(p, id, crypto::Role::kInstitution, p.pki->IssueNode(id, crypto::Role::kInstitution)));
  }
  RETURN_IF_ERROR(Issue(p, "coordinator", crypto::Role::kCoordinator,
                        p.pki->IssueNode("coordinator", crypto::Role::kCoordinator)));
  RETURN_IF_ERROR(Issue(p, "alice", crypto::Role::kOperator,
                        p.pki->IssueNode("alice", crypto::Role::kOperator)));
  RETURN_IF_ERROR(Issue(p, "expired", crypto::Role::kInstitution,
                        p.pki->IssueExpired("expired", crypto::Role::kInstitution)));
  RETURN_IF_ERROR(Issue(p, "foreign", crypto::Role::kInstitution,
                        p.pki->IssueForeign("foreign", crypto::Role::kInstitution)));
  return p;
}

std::string Serialized(const google::protobuf::Message& m) { return m.SerializeAsString(); }

// Runs one session of the four sites (threshold 3, 8 words) and writes the snapshots and
// the secagg corpora.
absl::Status MakeSession(Out& out, const Pki& p, absl::Time now) {
  const std::vector<std::string> ids = {"site-00", "site-01", "site-02", "site-03"};
  const v1::SecAggSetup setup = secagg::testing::MakeSetup(ids, 3, 8);
  secagg::ServerOptions options;
  options.ca_cert_pem = p.pki->ca().cert_pem;
  options.now = now;
  ASSIGN_OR_RETURN(std::unique_ptr<SecAggServer> server, SecAggServer::Create(setup, options));
  std::map<std::string, std::unique_ptr<crypto::Signer>> signers;
  std::map<std::string, std::unique_ptr<SecAggClient>> clients;
  std::vector<std::map<std::string, std::string>> sent(5), delivered(5);  // by step, id
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    ASSIGN_OR_RETURN(crypto::Signer signer,
                     crypto::Signer::Create(crypto::SecretBytes(std::string(p.key.at(id)))));
    signers[id] = std::make_unique<crypto::Signer>(std::move(signer));
    secagg::ClientIdentity identity{id, p.cert.at(id), signers[id].get(), p.pki->ca().cert_pem};
    v1::SecAggClientMessage reply;
    ASSIGN_OR_RETURN(clients[id],
                     SecAggClient::Start(identity, secagg::ClientPolicy(), setup,
                                         secagg::testing::TestWords(i, 8), now, &reply, nullptr));
    sent[0][id] = Serialized(reply);
  }
  std::vector<std::string> client_snapshots, server_snapshots;
  for (int step = 0; step < 5; ++step) {
    ASSIGN_OR_RETURN(v1::SecAggServerSnapshot snapshot, server->Snapshot());
    server_snapshots.push_back(Serialized(snapshot));
    if (step > 0) {
      for (const auto& [id, message] : server->Outgoing()) {
        delivered[step][id] = Serialized(message);
        ASSIGN_OR_RETURN(v1::SecAggClientMessage reply, clients.at(id)->Handle(message));
        sent[step][id] = Serialized(reply);
      }
    }
    client_snapshots.emplace_back(clients.at("site-00")->Snapshot().view());
    for (const std::string& id : ids) {
      v1::SecAggClientMessage reply;
      reply.ParseFromString(sent[step].at(id));
      RETURN_IF_ERROR(server->Receive(id, reply));
    }
    server->CloseRound();
  }
  if (server->state() != secagg::ServerState::kCompleted) {
    return absl::InternalError("the session did not complete");
  }
  for (int k = 0; k < 5; ++k) {
    RETURN_IF_ERROR(out.Data(absl::StrCat("client-", k, ".snapshot"), client_snapshots[k]));
    RETURN_IF_ERROR(out.Data(absl::StrCat("server-", k, ".snapshot"), server_snapshots[k]));
    RETURN_IF_ERROR(out.Seed("secagg_snapshot", absl::StrCat("client-", k),
                             FuzzWriter().Byte(0).Rest(client_snapshots[k]).bytes()));
    RETURN_IF_ERROR(out.Seed("secagg_snapshot", absl::StrCat("server-", k),
                             FuzzWriter().Byte(1).Rest(server_snapshots[k]).bytes()));
  }
  // The client: from each state, the message that state expects (the completed client gets
  // the unmasking request again); and the whole session from the start.
  FuzzWriter whole;
  whole.Byte(0);
  for (int k = 0; k < 5; ++k) {
    const std::string& next = delivered[k == 4 ? 4 : k + 1].at("site-00");
    RETURN_IF_ERROR(out.Seed("secagg_client", absl::StrCat("state-", k),
                             FuzzWriter().Byte(k).Chunk16(next).bytes()));
    if (k < 4) whole.Chunk16(next);
  }
  RETURN_IF_ERROR(out.Seed("secagg_client", "whole-session", whole.bytes()));
  // The server: at each step every client's answer, then CloseRound; and the whole session.
  FuzzWriter all;
  all.Byte(0);
  for (int step = 0; step < 5; ++step) {
    FuzzWriter one;
    one.Byte(step);
    for (size_t i = 0; i < ids.size(); ++i) {
      one.Byte(i).Chunk16(sent[step].at(ids[i]));
      all.Byte(i).Chunk16(sent[step].at(ids[i]));
    }
    one.Byte(0x80);
    all.Byte(0x80);
    RETURN_IF_ERROR(out.Seed("secagg_server", absl::StrCat("step-", step), one.bytes()));
  }
  RETURN_IF_ERROR(out.Seed("secagg_server", "whole-session", all.bytes()));
  return absl::OkStatus();
}

absl::Status MakePkiCorpora(Out& out, const Pki& p, absl::Time now) {
  RETURN_IF_ERROR(out.Data("ca.crt", p.pki->ca().cert_pem));
  RETURN_IF_ERROR(out.Data("ca.key", p.pki->ca().key_pem.view()));
  RETURN_IF_ERROR(out.Data("site-00.crt", p.cert.at("site-00")));
  RETURN_IF_ERROR(out.Data("site-00.key", p.key.at("site-00")));
  RETURN_IF_ERROR(out.Data("now", absl::StrCat(absl::ToUnixSeconds(now))));
  for (const auto& [id, cert] : p.cert) {
    RETURN_IF_ERROR(out.Seed("pki", "parse-" + id, FuzzWriter().Byte(0).Rest(cert).bytes()));
    RETURN_IF_ERROR(out.Seed("pki", "verify-" + id, FuzzWriter().Byte(1).Rest(cert).bytes()));
  }
  RETURN_IF_ERROR(
      out.Seed("pki", "verifier", FuzzWriter().Byte(6).Rest(p.cert.at("site-01")).bytes()));
  ASSIGN_OR_RETURN(crypto::SecretBytes key, crypto::GeneratePrivateKey());
  ASSIGN_OR_RETURN(std::string csr, crypto::CreateCsr(key, "site-99"));
  RETURN_IF_ERROR(out.Seed("pki", "csr-node-id", FuzzWriter().Byte(2).Rest(csr).bytes()));
  RETURN_IF_ERROR(out.Seed("pki", "sign-csr", FuzzWriter().Byte(3).Rest(csr).bytes()));
  RETURN_IF_ERROR(out.Seed("pki", "signer", FuzzWriter().Byte(4).Rest(key.view()).bytes()));
  RETURN_IF_ERROR(
      out.Seed("pki", "key-match", FuzzWriter().Byte(5).Rest(p.key.at("site-00")).bytes()));
  RETURN_IF_ERROR(
      out.Seed("pki", "key-mismatch", FuzzWriter().Byte(5).Rest(p.key.at("site-01")).bytes()));
  // CRLs: empty, one and two revoked certificates.
  std::vector<crypto::RevokedCertificate> revoked;
  for (const std::string id : {"", "site-01", "site-02"}) {
    if (!id.empty()) {
      ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::ParseCertificate(p.cert.at(id)));
      revoked.push_back({info.serial_hex, now, id == "site-01" ? "key-compromise" : "superseded"});
    }
    ASSIGN_OR_RETURN(std::string crl, crypto::CreateCrl(p.pki->ca(), revoked, revoked.size() + 1,
                                                        now, absl::Hours(24 * 30)));
    RETURN_IF_ERROR(out.Seed("crl", absl::StrCat("revoked-", revoked.size()), crl));
  }
  return absl::OkStatus();
}

// ---- Text inputs from the repository

absl::Status CopyFiles(Out& out, const std::string& target, const std::string& dir,
                       const std::string& suffix, std::optional<uint8_t> selector) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (!name.ends_with(suffix)) continue;
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(entry.path()));
    FuzzWriter w;
    if (selector.has_value()) w.Byte(*selector);
    RETURN_IF_ERROR(
        out.Seed(target, fs::path(dir).filename().string() + "-" + name, w.Rest(text).bytes()));
  }
  return absl::OkStatus();
}

absl::Status MakeTextCorpora(Out& out) {
  RETURN_IF_ERROR(
      CopyFiles(out, "task_spec", out.root + "/deploy/examples", ".textproto", std::nullopt));
  for (const char* dir : {"deploy/debian", "deploy/container", "deploy/kubernetes/coordinator",
                          "deploy/kubernetes/site"}) {
    RETURN_IF_ERROR(
        CopyFiles(out, "daemon_config", out.root + "/" + dir, "coordinator.textproto", 0));
    RETURN_IF_ERROR(CopyFiles(out, "daemon_config", out.root + "/" + dir, "client.textproto", 1));
  }
  RETURN_IF_ERROR(
      out.Seed("daemon_config", "console",
               FuzzWriter()
                   .Byte(2)
                   .Rest("coordinator_address: \"coordinator.example:7443\"\n"
                         "tls { cert: \"/etc/tessera/alice.crt\" key: "
                         "\"/etc/tessera/alice.key\" ca_cert: \"/etc/tessera/ca.crt\" }\n")
                   .bytes()));
  // The first lines of each example dataset, and one with CRLF line ends.
  for (const auto& entry : fs::directory_iterator(out.root + "/deploy/data")) {
    if (entry.path().extension() != ".csv") continue;
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(entry.path()));
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    lines.resize(std::min<size_t>(lines.size(), 4));
    RETURN_IF_ERROR(out.Seed("csv", entry.path().stem(), absl::StrJoin(lines, "\n") + "\n"));
    if (entry.path().stem() == "diabetes_progression") {
      RETURN_IF_ERROR(out.Seed("csv", "crlf", absl::StrJoin(lines, "\r\n") + "\r\n"));
    }
  }
  return absl::OkStatus();
}

// ---- IDX

std::string Idx(const std::vector<uint32_t>& dims) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  size_t count = 1;
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(d >> shift));
    count *= d;
  }
  for (size_t i = 0; i < count; ++i) bytes.push_back(static_cast<char>(i * 37 % 256));
  return bytes;
}

absl::StatusOr<std::string> Gzip(const std::string& bytes) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/x.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr || gzwrite(f, bytes.data(), bytes.size()) != static_cast<int>(bytes.size())) {
    return absl::InternalError("gzip");
  }
  gzclose(f);
  return common::ReadFile(path);
}

absl::Status MakeIdxCorpus(Out& out) {
  const std::string images = Idx({3, 4, 4}), labels = Idx({3});
  RETURN_IF_ERROR(out.Seed("idx", "images", FuzzWriter().Byte(0).Rest(images).bytes()));
  RETURN_IF_ERROR(out.Seed("idx", "labels", FuzzWriter().Byte(0).Rest(labels).bytes()));
  RETURN_IF_ERROR(
      out.Seed("idx", "dataset", FuzzWriter().Byte(1).Chunk16(images).Rest(labels).bytes()));
  ASSIGN_OR_RETURN(std::string gz, Gzip(images));
  RETURN_IF_ERROR(out.Seed("idx", "images-gz", FuzzWriter().Byte(2).Rest(gz).bytes()));
  RETURN_IF_ERROR(out.Seed("idx", "labels-plain-file", FuzzWriter().Byte(2).Rest(labels).bytes()));
  return absl::OkStatus();
}

// ---- Stores

// The seeds of a store target, and of its records target (same input layout), from the
// records of the store in `dir`: all of them, then each family's alone.
absl::Status SeedStore(Out& out, const std::string& store_target, const std::string& records_target,
                       const std::string& dir) {
  const std::vector<RawRecord> records = ReadAll(dir);
  const std::vector<std::string> families = Families(dir);
  std::map<std::string, std::vector<RawRecord>> by_family;
  for (const RawRecord& r : records) by_family[r.family].push_back(r);
  for (const std::string& target : {store_target, records_target}) {
    RETURN_IF_ERROR(out.Seed(target, "all", EncodeRecords(records, families)));
    for (const auto& [family, list] : by_family) {
      RETURN_IF_ERROR(out.Seed(target, family, EncodeRecords(list, families)));
    }
  }
  return absl::OkStatus();
}

absl::Status MakeCoordinatorStoreCorpus(Out& out, const std::string& server_snapshot) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/store";
  {
    ASSIGN_OR_RETURN(std::unique_ptr<coordinator::Store> store,
                     coordinator::OpenRocksDbStore(path));
    v1::TaskRecord task;
    RETURN_IF_ERROR(common::LoadProtoFile(out.root + "/deploy/examples/diabetes_linear.textproto",
                                          task.mutable_spec()));
    task.set_state(v1::TASK_RUNNING);
    task.set_last_committed_round(0);
    ASSIGN_OR_RETURN(std::string id, store->CreateTask(task));
    task.set_task_id(id);
    v1::RoundRecord round;
    round.set_task_id(id);
    round.set_round(0);
    round.add_fit_participants("site-00");
    round.add_fit_participants("site-01");
    const std::vector<float> model = {0.5f, -1.25f, 3.0f};
    RETURN_IF_ERROR(store->CommitRound(task, round, model));
    v1::InFlightRound in_flight;
    in_flight.set_task_id(id);
    in_flight.set_round(1);
    in_flight.set_attempt(1);
    in_flight.set_session("fuzz-session");
    in_flight.add_cohort("site-00");
    in_flight.set_threshold(3);
    in_flight.set_server_snapshot(server_snapshot);
    RETURN_IF_ERROR(store->PutInFlight(in_flight));
    v1::ClientRecord client;
    client.set_client_id("site-00");
    client.set_cert_fingerprint(std::string(64, 'a'));
    RETURN_IF_ERROR(store->PutClient(client));
    v1::PooledStatisticsRecord statistics;
    statistics.set_dataset_id("diabetes");
    statistics.add_columns("age");
    statistics.add_columns("bmi");
    statistics.add_participants("site-00");
    RETURN_IF_ERROR(store->PutStatistics(statistics));
  }
  return SeedStore(out, "coordinator_store", "coordinator_records", path);
}

absl::Status MakeSiteStoreCorpus(Out& out, const Pki& p, const std::string& client_snapshot,
                                 absl::Time now) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/store";
  {
    ASSIGN_OR_RETURN(std::unique_ptr<client::SiteStore> store, client::OpenSiteStore(path));
    v1::SiteSessionRecord session;
    session.set_session("fuzz-session");
    session.set_setup_digest(std::string(32, 'd'));
    session.set_contribution_key(std::string(32, 'k'));
    session.set_task_id("task-1");
    session.set_machine(client_snapshot);
    v1::ContributionRecord contribution;
    contribution.set_key(std::string(32, 'k'));
    contribution.set_session("fuzz-session");
    contribution.set_task_id("task-1");
    contribution.set_sent_sha256(std::string(32, 's'));
    RETURN_IF_ERROR(store->PutSession(session, &contribution));
    v1::ApprovalRecord approval;
    approval.set_task_id("task-1");
    approval.set_spec_hash(std::string(32, 'h'));
    approval.set_first_seen_unix_ms(absl::ToUnixMillis(now));
    RETURN_IF_ERROR(store->PutApproval(approval));
    ASSIGN_OR_RETURN(crypto::Signer signer,
                     crypto::Signer::Create(crypto::SecretBytes(std::string(p.key.at("site-00")))));
    client::EgressLedgerOptions options;
    options.coordinator_address = "coordinator.example:7443";
    options.coordinator_name = "coordinator";
    options.certificate_pem = p.cert.at("site-00");
    ASSIGN_OR_RETURN(std::unique_ptr<client::EgressLedger> ledger,
                     client::EgressLedger::Open(store.get(), &signer, options));
    for (uint32_t step = 1; step <= 3; ++step) {
      client::EgressMessage message;
      message.kind = v1::LEDGER_PUSH_RESULT;
      message.task_id = "task-1";
      message.session = "fuzz-session";
      message.step = step;
      message.ends_session = step == 3;
      RETURN_IF_ERROR(ledger->Record(message, absl::StrCat("answer ", step), now));
    }
  }
  return SeedStore(out, "site_store", "site_records", path);
}

absl::Status Run(const std::string& root) {
  Out out{root + "/tests/fuzz/data", root + "/tests/fuzz/corpus", root};
  fs::remove_all(out.data);
  fs::remove_all(out.corpus);
  RETURN_IF_ERROR(common::MakeDirectories(out.data));
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  ASSIGN_OR_RETURN(Pki pki, MakePki());
  RETURN_IF_ERROR(MakePkiCorpora(out, pki, now));
  RETURN_IF_ERROR(MakeSession(out, pki, now));
  RETURN_IF_ERROR(MakeTextCorpora(out));
  RETURN_IF_ERROR(MakeIdxCorpus(out));
  ASSIGN_OR_RETURN(std::string server_snapshot, common::ReadFile(out.data + "/server-2.snapshot"));
  ASSIGN_OR_RETURN(std::string client_snapshot, common::ReadFile(out.data + "/client-2.snapshot"));
  RETURN_IF_ERROR(MakeCoordinatorStoreCorpus(out, server_snapshot));
  RETURN_IF_ERROR(MakeSiteStoreCorpus(out, pki, client_snapshot, now));
  return absl::OkStatus();
}

}  // namespace
}  // namespace tessera::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <repository root>\n");
    return 2;
  }
  const absl::Status status = tessera::fuzz::Run(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "make_corpus: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
