// A revocation reaching a running federation, driven through the coordinator core with
// in-process fake sites (fake_site.h): the coordinator re-reads its CRL file, the revoked
// site leaves the running session at once, and the sites are handed the new CRL only once
// the coordinator itself no longer counts the revoked site (a site holding the new CRL
// refuses the revoked peer's keys; if the coordinator still counted that peer's answers,
// the session would go on to masked inputs it cannot sum).
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/log.h"
#include "coordinator/coordinator.h"
#include "crypto/crl.h"
#include "crypto/pki.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_site.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator {
namespace {

using fake::Eventually;
using fake::FakeSite;
using fake::FastOptions;
using fake::Finished;
using fake::ToySpec;
using ::tessera::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The serials `crl_pem` revokes (it must verify with `ca_cert_pem`); none for "".
std::vector<std::string> RevokedSerials(const std::string& crl_pem,
                                        const std::string& ca_cert_pem) {
  std::vector<std::string> serials;
  if (crl_pem.empty()) return serials;
  absl::StatusOr<crypto::CrlInfo> info = crypto::VerifyCrl(crl_pem, ca_cert_pem);
  EXPECT_OK(info.status());
  if (!info.ok()) return serials;
  for (const crypto::RevokedCertificate& entry : info->revoked) {
    serials.push_back(entry.serial_hex);
  }
  return serials;
}

class RevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, tessera::testing::TestPki::Create(dir_.path()));
    crl_path_ = dir_.path() + "/crl.pem";
    ASSERT_NO_FATAL_FAILURE(WriteCrl({}, 1));
    CoordinatorOptions options = FastOptions(*pki_);
    options.crl_file = crl_path_;
    ASSERT_OK_AND_ASSIGN(coordinator_,
                         Coordinator::Create(NewMemoryStore(), common::Clock::Real(), options));
  }

  void WriteCrl(const std::vector<crypto::RevokedCertificate>& revoked, uint64_t number) {
    ASSERT_OK_AND_ASSIGN(std::string pem, crypto::CreateCrl(pki_->ca(), revoked, number,
                                                            absl::Now(), absl::Hours(24)));
    ASSERT_OK(common::WriteFileAtomic(crl_path_, pem));
  }

  // `id`'s certificate (FakeSite issued it), told to the coordinator with a Hello so that
  // it knows the serial (FakeSite's own Hello names none).
  crypto::CertificateInfo HelloWithCertificate(const std::string& id) {
    absl::StatusOr<std::string> pem = common::ReadFile(pki_->dir() + "/" + id + ".crt");
    EXPECT_OK(pem.status());
    absl::StatusOr<crypto::CertificateInfo> info = crypto::ParseCertificate(pem.value_or(""));
    EXPECT_OK(info.status());
    if (!info.ok()) return {};
    v1::HelloRequest hello;
    hello.add_dataset_ids("toy");
    EXPECT_OK(coordinator_->Hello(id, "fp-" + id, hello, 1, &*info).status());
    return *info;
  }

  // Sites stop (in the test body's destructors) before the coordinator goes.
  TempDir dir_;
  std::unique_ptr<tessera::testing::TestPki> pki_;
  std::string crl_path_;
  std::unique_ptr<Coordinator> coordinator_;
};

// The CRL file gains site-d's serial while round 1's fit session waits for site-d's keys:
// the re-read drops site-d from that session at once (not at the step's deadline, two
// minutes here) and the round completes with the other three. While site-d is being
// dropped, the CRL the coordinator hands sites (work items, Hello) is still the old one;
// it lists site-d once the drop is done.
TEST_F(RevocationTest, ARevokedSiteLeavesTheSessionBeforeSitesAreHandedTheNewCrl) {
  FakeSite a(coordinator_.get(), pki_.get(), "site-a", {.train_rows = 30, .delta = 1});
  FakeSite b(coordinator_.get(), pki_.get(), "site-b", {.train_rows = 10, .delta = 5});
  FakeSite c(coordinator_.get(), pki_.get(), "site-c", {.train_rows = 10, .delta = 5});
  FakeSite d(coordinator_.get(), pki_.get(), "site-d", {.train_rows = 10, .silent_in_fit = true});
  const crypto::CertificateInfo revoked = HelloWithCertificate("site-d");
  ASSERT_FALSE(revoked.serial_hex.empty());

  absl::Mutex mu;
  std::vector<std::string> handed_while_dropping;
  common::SetLogSink([&](const std::string& line) {
    if (!absl::StrContains(line, "client_sessions_dropped") || !absl::StrContains(line, "site-d")) {
      return;
    }
    absl::MutexLock lock(&mu);
    handed_while_dropping.push_back(*coordinator_->crl_pem());
  });
  absl::Cleanup no_sink = [] { common::SetLogSink(nullptr); };

  v1::TaskSpec spec = ToySpec(1, 2);
  spec.set_round_deadline_seconds(120);
  spec.mutable_secure_aggregation()->set_step_deadline_seconds(120);
  ASSERT_OK_AND_ASSIGN(auto submitted, coordinator_->SubmitTask("op", spec));
  const std::string& id = submitted.task_id();
  ASSERT_TRUE(Eventually([&] {
    auto got = coordinator_->GetTask(id);
    return got.ok() && got->in_flight().round() == 1 &&
           got->in_flight().session_stage() == v1::STAGE_FIT;
  }));
  EXPECT_THAT(RevokedSerials(*coordinator_->crl_pem(), pki_->ca().cert_pem),
              Not(Contains(revoked.serial_hex)));

  ASSERT_NO_FATAL_FAILURE(WriteCrl({{revoked.serial_hex, absl::Now(), "key-compromise"}}, 2));
  const absl::Time revoked_at = absl::Now();
  EXPECT_THAT(coordinator_->RefreshCrl(/*force=*/false), ElementsAre("site-d"));
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(handed_while_dropping.size(), 1u);
    EXPECT_THAT(RevokedSerials(handed_while_dropping[0], pki_->ca().cert_pem),
                Not(Contains(revoked.serial_hex)))
        << "sites were handed the new CRL while the coordinator still counted site-d";
  }
  EXPECT_THAT(RevokedSerials(*coordinator_->crl_pem(), pki_->ca().cert_pem),
              ElementsAre(revoked.serial_hex));

  ASSERT_TRUE(Eventually([&] { return Finished(*coordinator_, id); }));
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(60)) << "waited for the step's deadline";
  ASSERT_OK_AND_ASSIGN(v1::GetTaskResponse got, coordinator_->GetTask(id));
  EXPECT_EQ(got.task().state(), v1::TASK_COMPLETED) << got.task().state_reason();
  const v1::RoundRecord& round = got.rounds(1);
  EXPECT_THAT(round.fit_participants(), ElementsAre("site-a", "site-b", "site-c"));
  EXPECT_THAT(round.drops(), Contains(AllOf(HasSubstr("site-d: advertise_keys"),
                                            HasSubstr(revoked.serial_hex + " revoked"))));
}

}  // namespace
}  // namespace tessera::coordinator
