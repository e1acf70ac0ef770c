#include "tests/attack/cheating_coordinator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "proto/analytics.h"
#include "proto/contribution_layout.h"
#include "proto/evaluation.h"
#include "proto/labels.h"
#include "proto/model_layout.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "secagg/stage_encoding.h"
#include "secagg/vector_codec.h"

namespace tessera::attack {

uint32_t DefaultThreshold(uint32_t n) { return secagg::DefaultThreshold(n); }

v1::SecAggEncoding DefaultEncoding(const StagePlan& plan) {
  auto encoding =
      secagg::StageEncoding(plan.spec, plan.stage, static_cast<uint32_t>(plan.cohort.size()));
  return encoding.ok() ? *encoding : v1::SecAggEncoding();
}

v1::WorkItem FirstItem(const StagePlan& plan) {
  v1::WorkItem item;
  item.set_task_id(plan.task_id);
  item.set_round(plan.round);
  item.set_stage(plan.stage);
  *item.mutable_spec() = plan.spec;
  item.set_spec_hash(crypto::HashTaskSpec(plan.spec));
  if (plan.stage == v1::STAGE_FIT || plan.stage == v1::STAGE_EVALUATE ||
      plan.stage == v1::STAGE_FIT_EVALUATE || plan.stage == v1::STAGE_TEST) {
    item.mutable_model()->mutable_values()->Assign(plan.model.begin(), plan.model.end());
    item.set_model_hash(crypto::HashModel(plan.model));
    *item.mutable_standardization() = plan.standardization;
    item.set_l2(proto::ResolvedL2(plan.spec.model(), plan.standardization.num_train_rows()));
  } else {
    item.set_model_hash(crypto::HashModel({}));
  }
  item.set_cohort_size(static_cast<uint32_t>(plan.cohort.size()));
  return item;
}

v1::SecAggSetup SetupFor(const StagePlan& plan) {
  std::vector<std::string> cohort = plan.cohort;
  std::sort(cohort.begin(), cohort.end());
  const uint32_t n = static_cast<uint32_t>(cohort.size());
  const v1::SecAggEncoding encoding = plan.encoding.value_or(DefaultEncoding(plan));
  v1::SecAggSetup setup;
  setup.set_protocol_version(secagg::kProtocolVersion);
  setup.set_session_nonce(std::string(crypto::RandomBytes(32)->view()));
  setup.set_task_id(plan.task_id);
  setup.set_round(plan.round);
  setup.set_stage(static_cast<uint32_t>(plan.stage));
  setup.set_attempt(plan.attempt);
  setup.set_model_hash(FirstItem(plan).model_hash());
  setup.set_threshold(plan.threshold > 0 ? plan.threshold : DefaultThreshold(n));
  for (const std::string& c : cohort) setup.add_invited(c);
  setup.set_vector_words(static_cast<uint32_t>(secagg::EncodedWords(encoding)));
  *setup.mutable_encoding() = encoding;
  // What the real coordinator binds into every set-up: the spec, N and the standardisation
  // the first items carry.
  const v1::WorkItem first = FirstItem(plan);
  setup.set_spec_hash(first.spec_hash());
  setup.set_pooled_rows(first.standardization().num_train_rows());
  if (first.has_standardization()) {
    setup.set_standardization_hash(crypto::HashMessage(first.standardization()));
  }
  return setup;
}

std::string SessionLabel(const StagePlan& plan) {
  return absl::StrCat(plan.task_id, "/r", plan.round, "/", proto::StageLabel(plan.stage), "/a",
                      plan.attempt);
}

v1::WorkItem StepItem(const StagePlan& plan, int step, const v1::SecAggServerMessage& message) {
  v1::WorkItem item;
  if (step == 0) item = FirstItem(plan);
  const std::string session = SessionLabel(plan);
  item.set_work_id(absl::StrCat(session, "/s", step));
  item.set_task_id(plan.task_id);
  item.set_round(plan.round);
  item.set_stage(plan.stage);
  item.set_cohort_size(static_cast<uint32_t>(plan.cohort.size()));
  item.set_deadline_unix_ms(absl::ToUnixMillis(absl::Now() + absl::Minutes(1)));
  item.set_secagg_session(session);
  *item.mutable_secagg() = message;
  return item;
}

v1::PushResultRequest AskFirstStep(AttackFederation& federation, const StagePlan& plan,
                                   const std::string& site) {
  v1::SecAggServerMessage message;
  message.set_round(v1::SECAGG_ADVERTISE_KEYS);
  *message.mutable_setup() = SetupFor(plan);
  v1::WorkItem item = StepItem(plan, 0, message);
  if (plan.tamper_first_item) plan.tamper_first_item(site, item);
  return federation.Ask(site, item);
}

StageOutcome RunStage(AttackFederation& federation, const StagePlan& plan) {
  StageOutcome out;
  const v1::SecAggSetup setup = SetupFor(plan);
  const v1::SecAggEncoding& encoding = setup.encoding();
  secagg::ServerOptions options;
  options.ca_cert_pem = federation.ca_cert_pem();
  options.now = absl::Now();
  auto server = secagg::SecAggServer::Create(setup, options);
  if (!server.ok()) {
    out.abort = absl::StrCat("set-up refused by the server: ", server.status().message());
    return out;
  }
  for (int step = 0; (*server)->state() == secagg::ServerState::kCollecting; ++step) {
    for (auto& [site, message] : (*server)->Outgoing()) {
      v1::WorkItem item = StepItem(plan, step, message);
      if (step == 0 && plan.tamper_first_item) plan.tamper_first_item(site, item);
      const v1::PushResultRequest answer =
          federation.Ask(site, item, [&, site = site](const std::vector<std::string>& sha256s) {
            return (*server)->ListedCertificates(site, sha256s);
          });
      if (answer.has_decline()) {
        out.declines.emplace(site, answer.decline());
        (*server)->Drop(site, v1::SECAGG_DROP_CLIENT_ABORTED, answer.decline().detail());
      } else {
        (void)(*server)->Receive(site, answer.secagg());
      }
    }
    (*server)->CloseRound();
  }
  if ((*server)->state() == secagg::ServerState::kCompleted) {
    out.words = (*server)->sum();
    out.survivors = (*server)->survivors();
    auto sums = secagg::DecodeSum(out.words, encoding);
    if (sums.ok()) {
      out.completed = true;
      out.sums = *sums;
    } else {
      out.abort = absl::StrCat("sum does not decode: ", sums.status().message());
    }
  } else {
    out.abort = absl::StrCat(v1::SecAggServerAbort_Name((*server)->abort_reason()), ": ",
                             (*server)->abort_detail());
  }
  return out;
}

double MaxAbsDifference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

std::vector<double> Difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

}  // namespace tessera::attack
