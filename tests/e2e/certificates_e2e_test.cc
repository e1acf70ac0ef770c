// The advertisement list names certificates by digest (secure-aggregation protocol version 2)
// and each site fetches the ones it lacks (Federation.FetchCertificates), with the real
// daemons:
//
//   E2eCertificatesTest.EachSiteFetchesItsPeersCertificatesOnceAndOnlyListedSitesGetThem:
//     three site daemons run a task of several sessions; each site's ledger records exactly
//     one FetchCertificates request (its first session's list: its two peers' certificates;
//     every later list is completed from what it holds), before it left, as a connection
//     message that carries digests only. Meanwhile a fourth site, in the federation but not
//     in the cohort, asks for the cohort's certificates for the running sessions again and
//     again and never gets one; malformed requests (no digest, a digest that is not 32
//     bytes, more than the limit) are refused with INVALID_ARGUMENT naming what is wrong.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/site_store.h"
#include "common/files.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/federation.grpc.pb.h"
#include "proto/site_ledger.pb.h"
#include "proto/transfer.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

constexpr char kStranger[] = "hospital-d";
constexpr char kInstance[] = "stranger-instance";

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  context->AddMetadata("tessera-instance", kInstance);
  return context;
}

grpc::Status Fetch(v1::Federation::Stub* stub, const v1::FetchCertificatesRequest& request,
                   v1::FetchCertificatesResponse* response) {
  return stub->FetchCertificates(Context().get(), request, response);
}

// Malformed requests of the `stranger`'s, from the well-formed `cohort` request: no
// digest, a short one, too many; each refused naming what is wrong.
void ExpectMalformedFetchesRefused(v1::Federation::Stub* stranger,
                                   const v1::FetchCertificatesRequest& cohort) {
  struct Malformed {
    const char* what;
    v1::FetchCertificatesRequest request;
    const char* named;
  };
  std::vector<Malformed> malformed(3);
  malformed[0] = {"no digest", cohort, "1 to 1024"};
  malformed[0].request.clear_certificate_sha256();
  malformed[1] = {"short digest", cohort, "32 bytes"};
  malformed[1].request.add_certificate_sha256("short");
  malformed[2] = {"too many", cohort, "1 to 1024"};
  for (size_t i = 0; i <= proto::kMaxCertificatesPerFetch; ++i) {
    malformed[2].request.add_certificate_sha256(std::string(32, 'x'));
  }
  for (const Malformed& m : malformed) {
    v1::FetchCertificatesResponse response;
    const grpc::Status st = Fetch(stranger, m.request, &response);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << m.what;
    EXPECT_THAT(st.error_message(), HasSubstr(m.named)) << m.what;
  }
}

// A site's ledger (its store in `store_dir`) after a task of four sessions or more: one
// certificate fetch, for the first list; the later lists from what it holds.
void ExpectOneCertificateFetch(const std::string& store_dir) {
  ASSERT_OK_AND_ASSIGN(auto store, client::OpenSiteStoreReadOnly(store_dir));
  ASSERT_OK_AND_ASSIGN(auto entries, store->ListLedgerEntries());
  int fetches = 0, sessions = 0;
  for (const v1::LedgerEntry& e : entries) {
    if (e.kind() == v1::LEDGER_PUSH_RESULT && e.step() == v1::SECAGG_ADVERTISE_KEYS) ++sessions;
    if (e.kind() != v1::LEDGER_FETCH_CERTIFICATES) continue;
    ++fetches;
    EXPECT_TRUE(e.task_id().empty()) << "a connection message";
    // Task id, session label and two 32-byte digests.
    EXPECT_LT(e.byte_count(), 200u);
  }
  EXPECT_GE(sessions, 4);
  EXPECT_EQ(fetches, 1) << "one fetch for the first list; the later lists from what it holds";
}

using E2eCertificatesTest = FederationTest;

TEST_F(E2eCertificatesTest, EachSiteFetchesItsPeersCertificatesOnceAndOnlyListedSitesGetThem) {
  std::vector<std::string> pki = Sites();
  pki.push_back(kStranger);
  ASSERT_OK(MakeTestPki(pki));
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());

  ASSERT_OK_AND_ASSIGN(std::shared_ptr<grpc::Channel> channel,
                       ChannelAs(site(kStranger).tls, crypto::Role::kInstitution));
  std::unique_ptr<v1::Federation::Stub> stranger = v1::Federation::NewStub(channel);
  {
    v1::HelloRequest hello;
    hello.set_instance_id(kInstance);
    v1::HelloResponse welcome;
    ASSERT_TRUE(stranger->Hello(Context().get(), hello, &welcome).ok());
  }
  v1::FetchCertificatesRequest cohort;
  for (const std::string& name : Sites()) {
    ASSERT_OK_AND_ASSIGN(std::string pem, common::ReadFile(site(name).tls.cert()));
    cohort.add_certificate_sha256(crypto::Sha256(pem));
  }

  ExpectMalformedFetchesRefused(stranger.get(), cohort);

  ASSERT_OK_AND_ASSIGN(v1::TaskSpec spec, LoadExampleTask());
  spec.set_rounds(3);
  ASSERT_OK_AND_ASSIGN(const std::string task_id, SubmitTask(spec));
  // While the task runs, the stranger asks for the cohort's certificates for each of its
  // sessions' first attempts.
  std::atomic<bool> stop{false};
  std::atomic<int> asked{0}, refused{0};
  std::thread stranger_thread([&] {
    const std::vector<std::string> sessions = {
        absl::StrCat(task_id, "/r0/statistics/a1"), absl::StrCat(task_id, "/r1/fit/a1"),
        absl::StrCat(task_id, "/r2/fit_evaluate/a1"), absl::StrCat(task_id, "/r3/fit_evaluate/a1")};
    for (size_t i = 0; !stop.load(); ++i) {
      v1::FetchCertificatesRequest request = cohort;
      request.set_task_id(task_id);
      request.set_secagg_session(sessions[i % sessions.size()]);
      v1::FetchCertificatesResponse response;
      const grpc::Status st = Fetch(stranger.get(), request, &response);
      ++asked;
      if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
          st.error_code() == grpc::StatusCode::NOT_FOUND) {
        ++refused;
      } else {
        ADD_FAILURE() << "the stranger got " << st.error_code() << " " << st.error_message()
                      << " and " << response.certificates_size() << " certificates";
      }
      absl::SleepFor(absl::Milliseconds(5));  // a pace, not a wait for a server
    }
  });
  absl::StatusOr<v1::TaskRecord> task = WaitForTask(task_id, IsFinished, absl::Seconds(300));
  stop = true;
  stranger_thread.join();
  ASSERT_OK(task.status());
  ASSERT_EQ(task->state(), v1::TASK_COMPLETED) << task->state_reason();
  EXPECT_GT(asked.load(), 0);
  EXPECT_EQ(refused.load(), asked.load());

  for (const std::string& name : Sites()) ASSERT_OK(StopClient(name));
  for (const std::string& name : Sites()) {
    SCOPED_TRACE(name);
    ASSERT_NO_FATAL_FAILURE(ExpectOneCertificateFetch(site(name).dir + "/store"));
  }
  EXPECT_TRUE(coordinator()->Running());
}

}  // namespace
}  // namespace tessera::e2e
