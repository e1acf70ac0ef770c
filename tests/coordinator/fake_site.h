// In-process fake sites for the coordinator core's tests (coordinator_test.cc): each answers
// the work board's items as an honest site would (secure aggregation with the real client
// state machine), or misbehaves as its SiteBehavior says; and a small task and fast options.
// Not thread-safe beyond what FakeSite documents; test code only.
#ifndef TESSERA_TESTS_COORDINATOR_FAKE_SITE_H_
#define TESSERA_TESTS_COORDINATOR_FAKE_SITE_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "coordinator/coordinator.h"
#include "coordinator/privacy_accountant.h"
#include "crypto/signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "secagg/client.h"
#include "secagg/protocol.h"
#include "secagg/vector_codec.h"
#include "tests/testing/eventually.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace tessera::coordinator::fake {

constexpr int kFeatures = 2;

// Every fake site evaluates 10 rows: the positives scored 0.8, four negatives 0.3 and one
// negative 0.6 (the one error): accuracy 0.9, AUC 1, log-loss (5 ln(1/0.8) + 4 ln(1/0.7) +
// ln(1/0.4)) / 10.
constexpr double kEvalScores[] = {0.8, 0.8, 0.8, 0.8, 0.8, 0.3, 0.3, 0.3, 0.3, 0.6};
constexpr double kEvalLabels[] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
inline const double kEvalLogLoss =
    (5 * std::log(1 / 0.8) + 4 * std::log(1 / 0.7) + std::log(1 / 0.4)) / 10;

// How a fake site answers.
struct SiteBehavior {
  uint64_t train_rows = 10;
  float delta = 0;                        // every parameter moves by this much in FIT
  bool silent_in_fit = false;             // never answers FIT sessions
  bool silent_in_evaluate = false;        // never answers EVALUATE sessions
  bool forges_advertisement = false;      // signs its FIT advertisement with garbage
  uint32_t silent_after_round = 1000000;  // answers no FIT session of a later round
  // In the FIT session of this attempt (1-based; 0: none), stays silent from the masked
  // input on: it advertised and shared its keys, then crashed.
  uint32_t silent_from_masked_input_in_fit_attempt = 0;
  // Declines every session of this stage (STAGE_UNSPECIFIED: none) at its first step with
  // `decline` (e.g. DATA_ERROR, as a site missing a column does).
  v1::Stage declines_stage = v1::STAGE_UNSPECIFIED;
  v1::Decline decline = {};
  // A malicious site: changes its encoded words of each stage's input before masking them
  // (a shift within Z_2^32 the coordinator cannot see). Null: honest.
  std::function<void(v1::Stage, std::vector<uint32_t>&)> tamper_words = nullptr;
  // Replaces every encrypted share it sends with zero bytes of the same size.
  bool garbage_shares = false;
  // Answers the masked-input step of FIT sessions with a consistency signature instead.
  bool wrong_message_in_fit = false;
};

// A site in a thread: Hello, then long-poll and answer every secure-aggregation step with
// the real client state machine (secagg/client.h) and a real certificate, until
// stopped. Its vectors are made up (not trained), so tests know the exact sums.
class FakeSite {
 public:
  // Issues the site's certificate from `pki` the first time a site of this name is made.
  FakeSite(Coordinator* coordinator, tessera::testing::TestPki* pki, std::string id,
           SiteBehavior behavior)
      : coordinator_(coordinator), id_(std::move(id)), behavior_(std::move(behavior)) {
    const std::string cert_path = pki->dir() + "/" + id_ + ".crt";
    if (!common::PathExists(cert_path)) {
      EXPECT_OK(pki->IssueNode(id_, crypto::Role::kInstitution).status());
    }
    auto cert = common::ReadFile(cert_path);
    auto key = common::ReadFile(pki->dir() + "/" + id_ + ".key");
    EXPECT_OK(cert.status());
    EXPECT_OK(key.status());
    auto signer = crypto::Signer::Create(crypto::SecretBytes(std::move(*key)));
    EXPECT_OK(signer.status());
    signer_ = std::make_unique<crypto::Signer>(std::move(*signer));
    identity_.client_id = id_;
    identity_.certificate_pem = *cert;
    identity_.signer = signer_.get();
    identity_.ca_cert_pem = pki->ca().cert_pem;
    v1::HelloRequest hello;
    hello.add_dataset_ids("toy");
    EXPECT_OK(coordinator_->Hello(id_, "fp-" + id_, hello, 1).status());
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeSite() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int refused() const { return refused_; }
  // The session labels of every work item this site received.
  std::set<std::string> sessions_seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  std::vector<double> Values(const v1::WorkItem& w) const {
    switch (w.stage()) {
      case v1::STAGE_STATISTICS: {
        double n = static_cast<double>(behavior_.train_rows);
        // Every feature has mean 1 and variance 1 at every site.
        return proto::EncodeStatistics(behavior_.train_rows, std::vector<double>(kFeatures, n),
                                       std::vector<double>(kFeatures, 2 * n));
      }
      case v1::STAGE_FIT: {
        std::vector<float> delta(w.model().values_size(), behavior_.delta);
        return proto::EncodeWeightedFit(behavior_.train_rows, w.standardization().num_train_rows(),
                                        delta, w.spec().secure_aggregation().clip());
      }
      case v1::STAGE_EVALUATE: {
        auto layout = proto::MakeEvaluationLayout(w.spec().model());
        EXPECT_OK(layout.status());
        proto::EvaluationInput input;
        input.predictions = kEvalScores;
        input.labels = kEvalLabels;
        auto sums = proto::EncodeEvaluation(*layout, input);
        EXPECT_OK(sums.status());
        return sums.ok() ? *sums : std::vector<double>();
      }
      case v1::STAGE_FIT_EVALUATE: {  // one session per round: FIT, then EVALUATE
        v1::WorkItem fit = w;
        fit.set_stage(v1::STAGE_FIT);
        v1::WorkItem evaluate = w;
        evaluate.set_stage(v1::STAGE_EVALUATE);
        std::vector<double> values = Values(fit);
        const std::vector<double> evaluation = Values(evaluate);
        values.insert(values.end(), evaluation.begin(), evaluation.end());
        return values;
      }
      case v1::STAGE_ANALYTICS:  // made-up: nobody's rows
        return std::vector<double>(proto::AnalyticsLength(w.spec().analytics()), 0.0);
      default:
        return {};
    }
  }

  // The behaviour's tampering, stage by stage: a FIT_EVALUATE vector's FIT words (its
  // first two segments) as FIT's, the rest as EVALUATE's.
  void Tamper(const v1::WorkItem& w, std::vector<uint32_t>& words) const {
    if (w.stage() != v1::STAGE_FIT_EVALUATE) {
      behavior_.tamper_words(w.stage(), words);
      return;
    }
    v1::SecAggEncoding fit_segments;
    for (int i = 0; i < 2; ++i)
      *fit_segments.add_segments() = w.secagg().setup().encoding().segments(i);
    const size_t fit_words = std::min(words.size(), secagg::EncodedWords(fit_segments));
    std::vector<uint32_t> fit(words.begin(), words.begin() + fit_words);
    std::vector<uint32_t> evaluate(words.begin() + fit_words, words.end());
    behavior_.tamper_words(v1::STAGE_FIT, fit);
    behavior_.tamper_words(v1::STAGE_EVALUATE, evaluate);
    words = fit;
    words.insert(words.end(), evaluate.begin(), evaluate.end());
  }

  // The answer to one step, or nullopt to stay silent.
  std::optional<v1::SecAggClientMessage> Step(const v1::WorkItem& w) {
    // A FIT_EVALUATE session is the round's fit (one session per round).
    const bool fit = w.stage() == v1::STAGE_FIT || w.stage() == v1::STAGE_FIT_EVALUATE;
    if (w.secagg().round() == v1::SECAGG_ADVERTISE_KEYS) {
      if (w.stage() == v1::STAGE_EVALUATE && behavior_.silent_in_evaluate) return std::nullopt;
      if (fit && (behavior_.silent_in_fit || w.round() > behavior_.silent_after_round)) {
        return std::nullopt;
      }
      auto words = secagg::EncodeVector(Values(w), w.secagg().setup().encoding());
      EXPECT_OK(words.status());
      if (behavior_.tamper_words) Tamper(w, *words);
      v1::SecAggClientMessage reply;
      v1::SecAggClientAbort abort;
      auto client =
          secagg::SecAggClient::Start(identity_, secagg::ClientPolicy(), w.secagg().setup(),
                                      std::move(*words), absl::Now(), &reply, &abort);
      EXPECT_OK(client.status());
      if (!client.ok()) return std::nullopt;
      sessions_[w.secagg_session()] = std::move(*client);
      if (fit && behavior_.forges_advertisement) {
        reply.mutable_advertisement()->set_signature("not a signature");
      }
      return reply;
    }
    if (fit && behavior_.silent_from_masked_input_in_fit_attempt > 0 &&
        absl::EndsWith(w.secagg_session(),
                       absl::StrCat("/a", behavior_.silent_from_masked_input_in_fit_attempt)) &&
        secagg::StepIndex(w.secagg().round()) >= secagg::StepIndex(v1::SECAGG_MASKED_INPUT)) {
      return std::nullopt;
    }
    auto it = sessions_.find(w.secagg_session());
    if (it == sessions_.end()) return std::nullopt;
    auto reply = it->second->Handle(w.secagg());
    if (!reply.ok()) {
      // As a real site: it declines, naming the peer its machine blames (if any).
      aborted_ = it->second.get();
      return std::nullopt;
    }
    if (behavior_.garbage_shares && reply->has_share_keys()) {
      for (v1::EncryptedShare& s : *reply->mutable_share_keys()->mutable_shares()) {
        std::fill(s.mutable_ciphertext()->begin(), s.mutable_ciphertext()->end(), '\0');
      }
    }
    if (fit && behavior_.wrong_message_in_fit && w.secagg().round() == v1::SECAGG_MASKED_INPUT) {
      reply->mutable_consistency()->set_signature("wrong");
    }
    return *reply;
  }

  // The advertisement list's certificates, fetched from the coordinator as a daemon would
  // (without keeping them: a fake site asks for every list's).
  void CompleteCertificates(v1::WorkItem* w) {
    v1::FetchCertificatesRequest request;
    request.set_task_id(w->task_id());
    request.set_secagg_session(w->secagg_session());
    auto* entries = w->mutable_secagg()->mutable_advertisements()->mutable_entries();
    for (const v1::AdvertisementEntry& e : *entries) {
      if (e.advertisement().certificate().empty()) {
        request.add_certificate_sha256(e.advertisement().certificate_sha256());
      }
    }
    if (request.certificate_sha256().empty()) return;
    auto response = coordinator_->FetchCertificates(id_, request);
    if (!response.ok()) return;  // the entries stay without: the machine refuses them
    int next = 0;
    for (v1::AdvertisementEntry& e : *entries) {
      if (!e.advertisement().certificate().empty()) continue;
      if (next < response->certificates_size()) {
        e.mutable_advertisement()->set_certificate(response->certificates(next++));
      }
    }
  }

  void Loop() {
    while (!stop_) {
      auto item = coordinator_->PullWork(id_, absl::Now() + absl::Milliseconds(20));
      if (!item.ok() || *item == nullptr) continue;
      {
        absl::MutexLock lock(&mu_);
        seen_.insert((*item)->secagg_session());
      }
      if ((*item)->secagg().has_advertisements()) {
        v1::WorkItem listed = **item;
        CompleteCertificates(&listed);
        *item = std::make_shared<const v1::WorkItem>(std::move(listed));
      }
      v1::PushResultRequest result;
      result.set_work_id((*item)->work_id());
      if ((*item)->stage() == behavior_.declines_stage &&
          (*item)->secagg().round() == v1::SECAGG_ADVERTISE_KEYS) {
        *result.mutable_decline() = behavior_.decline;
      } else {
        aborted_ = nullptr;
        std::optional<v1::SecAggClientMessage> reply = Step(**item);
        if (reply.has_value()) {
          *result.mutable_secagg() = std::move(*reply);
        } else if (aborted_ != nullptr) {
          result.mutable_decline()->set_reason(v1::Decline::SECURE_AGGREGATION_ABORTED);
          result.mutable_decline()->set_detail(
              absl::StrCat(v1::SecAggClientAbort_Name(aborted_->abort_reason()), ": ",
                           aborted_->abort_detail()));
          result.mutable_decline()->set_culprit(aborted_->culprit());
        } else {
          continue;
        }
      }
      if (!coordinator_->PushResult(id_, result).ok()) ++refused_;
    }
  }

  Coordinator* const coordinator_;
  const std::string id_;
  const SiteBehavior behavior_;
  std::unique_ptr<crypto::Signer> signer_;
  secagg::ClientIdentity identity_;
  std::map<std::string, std::unique_ptr<secagg::SecAggClient>> sessions_;
  // The machine that aborted on the item being answered (loop thread only).
  const secagg::SecAggClient* aborted_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  mutable absl::Mutex mu_;
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

inline v1::TaskSpec ToySpec(uint32_t rounds, uint32_t min_clients) {
  v1::TaskSpec spec;
  spec.set_name("toy");
  spec.mutable_dataset()->set_id("toy");
  spec.mutable_dataset()->add_features("x1");
  spec.mutable_dataset()->add_features("x2");
  spec.mutable_dataset()->set_label("y");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_model()->set_inverse_regularization(1.0);
  spec.mutable_training()->set_learning_rate(0.1);
  spec.set_rounds(rounds);
  spec.set_min_clients(min_clients);
  spec.set_round_deadline_seconds(1);
  return spec;
}

inline CoordinatorOptions FastOptions(const tessera::testing::TestPki& pki) {
  CoordinatorOptions o;
  o.ca_cert_pem = pki.ca().cert_pem;
  o.runner.cohort_poll_interval = absl::Milliseconds(5);
  o.runner.retry_pause = absl::Milliseconds(5);
  return o;
}

// Polls `done` until it holds or 30 s pass (a generous bound for a loaded CI machine).
inline bool Eventually(const std::function<bool()>& done) {
  return tessera::testing::Eventually(done, absl::Seconds(30));
}

inline v1::TaskState StateOf(Coordinator& c, const std::string& id) {
  auto t = c.GetTask(id);
  return t.ok() ? t->task().state() : v1::TASK_STATE_UNSPECIFIED;
}

inline bool Finished(Coordinator& c, const std::string& id) {
  v1::TaskState s = StateOf(c, id);
  return s == v1::TASK_COMPLETED || s == v1::TASK_FAILED || s == v1::TASK_CANCELLED;
}

// Submits `spec` (as operator "op") and waits for the task to finish; the finished task.
inline v1::GetTaskResponse RunToEnd(Coordinator& c, const v1::TaskSpec& spec) {
  auto submitted = c.SubmitTask("op", spec);
  EXPECT_OK(submitted.status());
  if (!submitted.ok()) return {};
  EXPECT_TRUE(Eventually([&] { return Finished(c, submitted->task_id()); }));
  auto got = c.GetTask(submitted->task_id());
  EXPECT_OK(got.status());
  return got.ok() ? *got : v1::GetTaskResponse();
}

}  // namespace tessera::coordinator::fake

#endif  // TESSERA_TESTS_COORDINATOR_FAKE_SITE_H_
