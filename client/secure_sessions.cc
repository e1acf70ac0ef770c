#include "client/secure_sessions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/ledger.h"
#include "client/policy.h"
#include "client/site_budget.h"
#include "client/site_store.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "proto/site_budget.pb.h"
#include "proto/site_state.pb.h"
#include "secagg/protocol.h"
#include "secagg/stage_encoding.h"
#include "secagg/vector_codec.h"

namespace tessera::client {
namespace {

// A session's record outlives its last step's deadline by this much, so that a coordinator
// (or this site) restarted meanwhile can resume it; then it is deleted with its secrets.
constexpr absl::Duration kRetention = absl::Hours(1);
// Expired records are looked for at most this often.
constexpr absl::Duration kExpiryInterval = absl::Minutes(1);

std::string RequestDigest(const v1::WorkItem& item) { return crypto::HashMessage(item.secagg()); }

// The digest of the standardisation a work item carries, as the set-up binds it: empty for
// stages that carry none.
std::string StandardizationDigest(const v1::WorkItem& item) {
  return item.has_standardization() ? crypto::HashMessage(item.standardization()) : std::string();
}

bool SameEncoding(const v1::SecAggEncoding& a, const v1::SecAggEncoding& b) {
  return crypto::HashMessage(a) == crypto::HashMessage(b);
}

// The state machine's policy from the site's: SecAgg+ settings (min_threshold is set by
// the caller).
secagg::ClientPolicy SecAggPolicy(const v1::LocalPolicy& policy) {
  secagg::ClientPolicy out;
  out.allow_sparse = !policy.refuse_secagg_plus();
  if (policy.min_secagg_plus_colluding_fraction() > 0) {
    out.sparse_min_colluding_fraction = policy.min_secagg_plus_colluding_fraction();
  }
  return out;
}

// Takes (and clears) the snapshot's input kept apart from the record.
crypto::SecretBytes TakeInput(v1::SiteSessionRecord& record) {
  crypto::SecretBytes input(std::move(*record.mutable_machine_input()));
  record.clear_machine_input();
  return input;
}

// Drops (and wipes) the record's snapshot and its input.
void DropMachine(v1::SiteSessionRecord& record) {
  crypto::SecretBytes wiped(std::move(*record.mutable_machine()));
  record.clear_machine();
  TakeInput(record);
}

// Whether `step` answered with a masked input whose words the record no longer keeps.
bool VectorForgotten(const v1::StepAnswer& step) {
  return step.answer().secagg().has_masked_input() &&
         step.answer().secagg().masked_input().masked_input().empty();
}

// Once the session is past the masked input, the record keeps its digest
// (StepAnswer.sent_sha256, written with the answer) instead of its words: the coordinator
// never asks for that step again, and the record, rewritten at every later step, no longer
// carries a model-sized vector.
void ForgetSentVectors(v1::SiteSessionRecord& record) {
  for (v1::StepAnswer& step : *record.mutable_answers()) {
    if (!step.answer().secagg().has_masked_input() || VectorForgotten(step)) continue;
    // A record from before the digest was written with the answer.
    if (step.sent_sha256().empty()) step.set_sent_sha256(crypto::HashMessage(step.answer()));
    step.mutable_answer()->mutable_secagg()->mutable_masked_input()->clear_masked_input();
  }
}

}  // namespace

SecureSessions::SecureSessions(secagg::ClientIdentity identity, v1::LocalPolicy policy,
                               SiteStore* store)
    : identity_(std::move(identity)), policy_(std::move(policy)), store_(store) {}

SecureSessions::~SecureSessions() = default;

v1::PushResultRequest SecureSessions::Declined(const v1::WorkItem& item, v1::Decline::Reason reason,
                                               std::string detail) {
  v1::PushResultRequest answer;
  answer.set_work_id(item.work_id());
  answer.mutable_decline()->set_reason(reason);
  answer.mutable_decline()->set_detail(std::move(detail));
  return answer;
}

v1::PushResultRequest SecureSessions::Abort(v1::SiteSessionRecord& record, const v1::WorkItem& item,
                                            v1::SecAggClientAbort reason, const std::string& detail,
                                            const std::string& culprit) {
  const std::string name = v1::SecAggClientAbort_Name(reason);
  v1::PushResultRequest answer =
      Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED, absl::StrCat(name, ": ", detail));
  if (!culprit.empty()) answer.mutable_decline()->set_culprit(culprit);
  // Logged before End, which drops the session's machine: `detail` and `culprit` may be
  // the machine's own strings.
  common::LogWarning("secagg_aborted")
      .With("session", record.session())
      .With("reason", name)
      .With("detail", detail)
      .With("culprit", culprit);
  End(record, item, answer, name);
  return answer;
}

void SecureSessions::End(v1::SiteSessionRecord& record, const v1::WorkItem& item,
                         const v1::PushResultRequest& answer, const std::string& name) {
  machines_.erase(record.session());
  record.set_state(v1::SITE_SESSION_ABORTED);
  record.set_abort_reason(name);
  DropMachine(record);
  v1::StepAnswer* step = record.add_answers();
  step->set_step(item.secagg().round());
  step->set_request_sha256(RequestDigest(item));
  *step->mutable_answer() = answer;
  step->set_recorded_unix_ms(absl::ToUnixMillis(absl::Now()));
  if (absl::Status st = Write(record, nullptr, nullptr, item, answer, absl::Now()); !st.ok()) {
    // The decline carries nothing of the site's; the session is over either way.
    common::LogError("site_store_write_failed")
        .With("session", record.session())
        .With("error", st.ToString());
  }
}

absl::Status SecureSessions::Write(const v1::SiteSessionRecord& record,
                                   const v1::ContributionRecord* contribution,
                                   const v1::BudgetCharge* charge, const v1::WorkItem& item,
                                   const v1::PushResultRequest& answer, absl::Time now,
                                   const std::string& answer_sha256) {
  if (ledger_ == nullptr) {
    return charge != nullptr ? store_->PutSessionCharged(record, *contribution, *charge)
                             : store_->PutSession(record, contribution);
  }
  // The bytes the answer will leave as (SentBytes): crypto::HashMessage is their SHA-256.
  return ledger_->RecordWith(PushResultMessage(item, answer), answer.ByteSizeLong(),
                             answer_sha256.empty() ? crypto::HashMessage(answer) : answer_sha256,
                             now, [&](const LedgerRecords& ledger) {
                               return store_->PutSessionWithLedger(record, contribution, charge,
                                                                   ledger);
                             });
}

std::optional<v1::PushResultRequest> SecureSessions::CheckBudget(const v1::WorkItem& item,
                                                                 const std::string& dataset,
                                                                 const std::string& key,
                                                                 double noise_multiplier) {
  auto charges = store_->ListBudgetCharges();
  if (!charges.ok()) {
    common::LogError("site_store_read_failed").With("error", charges.status().ToString());
    return Declined(item, v1::Decline::COMPUTE_ERROR,
                    "the site could not read its store (details in the site's log)");
  }
  double epsilon_after = 0;
  const absl::Status fits =
      CheckSiteBudget(policy_, dataset, *charges, key, noise_multiplier, &epsilon_after);
  if (fits.ok()) return std::nullopt;
  // The numbers stay in the site's own log: the account spans other tasks.
  common::LogWarning("site_budget_exhausted")
      .With("task", item.task_id())
      .With("dataset", dataset)
      .With("epsilon_after", epsilon_after);
  return Declined(item, v1::Decline::SITE_BUDGET_EXHAUSTED, std::string(fits.message()));
}

v1::PushResultRequest SecureSessions::Record(v1::SiteSessionRecord& record,
                                             const v1::WorkItem& item, v1::PushResultRequest answer,
                                             bool contributes, absl::Time now,
                                             std::string request_digest) {
  if (secagg::StepIndex(item.secagg().round()) > secagg::StepIndex(v1::SECAGG_MASKED_INPUT)) {
    ForgetSentVectors(record);
  }
  if (request_digest.empty()) request_digest = RequestDigest(item);
  v1::StepAnswer* step = record.add_answers();
  step->set_step(item.secagg().round());
  step->set_request_sha256(request_digest);
  *step->mutable_answer() = answer;
  step->set_recorded_unix_ms(absl::ToUnixMillis(now));
  // A masked input's digest, hashed once: the step keeps it for when its words are
  // dropped, the contribution record names what was sent with it.
  if (answer.secagg().has_masked_input()) step->set_sent_sha256(crypto::HashMessage(answer));
  v1::ContributionRecord contribution;
  if (contributes) {
    contribution.set_key(record.contribution_key());
    *contribution.mutable_part_keys() = record.part_keys();
    contribution.set_session(record.session());
    contribution.set_setup_digest(record.setup_digest());
    contribution.set_sent_sha256(step->sent_sha256().empty() ? crypto::HashMessage(answer)
                                                             : step->sent_sha256());
    contribution.set_task_id(record.task_id());
    contribution.set_round(record.round());
    contribution.set_stage(record.stage());
    contribution.set_dataset_id(record.dataset_id());
    contribution.set_model_hash(record.model_hash());
    contribution.set_recorded_unix_ms(absl::ToUnixMillis(now));
  }
  absl::Status written;
  if (contributes && record.noise_multiplier() > 0) {
    v1::BudgetCharge charge;
    charge.set_dataset_id(record.dataset_id());
    charge.set_contribution_key(record.contribution_key());
    charge.set_noise_multiplier(record.noise_multiplier());
    charge.set_task_id(record.task_id());
    charge.set_round(record.round());
    charge.set_stage(record.stage());
    charge.set_session(record.session());
    charge.set_recorded_unix_ms(absl::ToUnixMillis(now));
    written = Write(record, &contribution, &charge, item, answer, now, step->sent_sha256());
  } else {
    written = Write(record, contributes ? &contribution : nullptr, nullptr, item, answer, now,
                    step->sent_sha256());
  }
  DropMachine(record);
  if (written.code() == absl::StatusCode::kAlreadyExists) {
    // Another session sent the masked input for this contribution already.
    record.mutable_answers()->RemoveLast();
    machines_.erase(record.session());
    v1::PushResultRequest refused = Declined(
        item, v1::Decline::ALREADY_CONTRIBUTED,
        "this site already sent its contribution for this dataset, stage, global model and "
        "training configuration in another session");
    record.set_state(v1::SITE_SESSION_ABORTED);
    record.set_abort_reason("ALREADY_CONTRIBUTED");
    v1::StepAnswer* refusal = record.add_answers();
    refusal->set_step(item.secagg().round());
    refusal->set_request_sha256(request_digest);
    *refusal->mutable_answer() = refused;
    refusal->set_recorded_unix_ms(absl::ToUnixMillis(now));
    (void)Write(record, nullptr, nullptr, item, refused, now);
    return refused;
  }
  if (!written.ok()) {
    // Nothing unrecorded leaves: the step is not answered, and the machine in memory (which
    // moved on) is dropped, so that a retry starts again from the last recorded state.
    machines_.erase(record.session());
    common::LogError("site_store_write_failed")
        .With("session", record.session())
        .With("error", written.ToString());
    return Declined(item, v1::Decline::COMPUTE_ERROR,
                    "the site could not record its answer, so it sent none (details in the "
                    "site's log)");
  }
  auto cached = machines_.find(record.session());
  if (cached != machines_.end()) {
    if (record.state() == v1::SITE_SESSION_OPEN) {
      cached->second.answers = record.answers_size();
    } else {
      machines_.erase(cached);
    }
  }
  return answer;
}

std::optional<v1::PushResultRequest> SecureSessions::CheckSetup(const v1::WorkItem& item) const {
  auto refuse = [&](const std::string& detail) {
    return Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED,
                    absl::StrCat(v1::SecAggClientAbort_Name(v1::SECAGG_BAD_SETUP), ": ", detail));
  };
  const v1::SecAggSetup& setup = item.secagg().setup();
  if (setup.task_id() != item.task_id() || setup.round() != item.round() ||
      setup.stage() != static_cast<uint32_t>(item.stage()) ||
      setup.model_hash() != item.model_hash()) {
    return refuse("the set-up does not match its work item");
  }
  if (setup.spec_hash() != item.spec_hash()) {
    return refuse("the set-up binds another task spec than the work item's");
  }
  if (setup.pooled_rows() != item.standardization().num_train_rows()) {
    return refuse("the set-up binds another pooled row count than the work item's");
  }
  if (setup.standardization_hash() != StandardizationDigest(item)) {
    return refuse("the set-up binds other pooled statistics than the work item's");
  }
  const uint32_t invited = static_cast<uint32_t>(setup.invited_size());
  auto expected = secagg::StageEncoding(item.spec(), item.stage(), invited);
  if (!expected.ok()) {
    return Declined(item, v1::Decline::BAD_WORK_ITEM,
                    absl::StrCat("no encoding for this stage: ", expected.status().message()));
  }
  if (!SameEncoding(*expected, setup.encoding())) {
    return refuse("the set-up's encoding is not the one this site derives from the spec");
  }
  const uint32_t least =
      std::max(secagg::SafeThreshold(invited, std::nullopt), policy_.min_cohort());
  if (setup.threshold() < least) {
    return refuse(absl::StrCat("threshold ", setup.threshold(), " is below ", least,
                               ", the least this site accepts for ", invited,
                               " invited sites (floor(2n/3) + 1, and its minimum cohort)"));
  }
  if (absl::Status st = CheckThreshold(policy_, setup.threshold(), invited); !st.ok()) {
    return Declined(item, v1::Decline::POLICY_REFUSED, std::string(st.message()));
  }
  return std::nullopt;
}

std::optional<v1::PushResultRequest> SecureSessions::Precheck(
    const v1::WorkItem& item, std::span<const std::string> contribution_keys) {
  const std::string& contribution_key = contribution_keys.front();
  const std::string& label = item.secagg_session();
  if (label.empty() || !item.secagg().has_setup() ||
      item.secagg().round() != v1::SECAGG_ADVERTISE_KEYS) {
    return Declined(item, v1::Decline::BAD_WORK_ITEM,
                    "the first step must carry a session label and its set-up");
  }
  auto stored = store_->GetSession(label);
  if (stored.ok()) {
    if (stored->answers_size() > 0 && stored->answers(0).request_sha256() == RequestDigest(item)) {
      return stored->answers(0).answer();  // a repeated request: the same answer
    }
    if (stored->state() == v1::SITE_SESSION_OPEN) {
      return Abort(*stored, item, v1::SECAGG_REQUEST_CHANGED,
                   "the session's set-up differs from the one this site already answered");
    }
    return Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED,
                    absl::StrCat(v1::SecAggClientAbort_Name(v1::SECAGG_REQUEST_CHANGED),
                                 ": this site already answered this session with another set-up"));
  }
  if (stored.status().code() != absl::StatusCode::kNotFound) {
    common::LogError("site_store_read_failed").With("error", stored.status().ToString());
    return Declined(item, v1::Decline::COMPUTE_ERROR,
                    "the site could not read its store (details in the site's log)");
  }
  if (auto refused = CheckSetup(item)) return refused;
  for (const std::string& key : contribution_keys) {
    auto contributed = store_->GetContribution(key);
    if (contributed.ok()) {
      return Declined(item, v1::Decline::ALREADY_CONTRIBUTED,
                      "this site already sent its contribution for this dataset, stage, global "
                      "model and training configuration in another session");
    }
    if (contributed.status().code() != absl::StatusCode::kNotFound) {
      common::LogError("site_store_read_failed").With("error", contributed.status().ToString());
      return Declined(item, v1::Decline::COMPUTE_ERROR,
                      "the site could not read its store (details in the site's log)");
    }
  }
  // The site's own privacy budget, before anything is computed (client/site_budget.h).
  if (std::optional<double> sigma = ReleaseNoiseMultiplier(item.spec(), item.stage())) {
    return CheckBudget(item, item.spec().dataset().id(), contribution_key, *sigma);
  }
  return std::nullopt;
}

v1::PushResultRequest SecureSessions::Start(const v1::WorkItem& item,
                                            std::span<const double> values,
                                            std::span<const std::string> contribution_keys,
                                            absl::Time now) {
  const v1::SecAggSetup& setup = item.secagg().setup();
  v1::SiteSessionRecord record;
  record.set_session(item.secagg_session());
  record.set_setup_digest(secagg::SetupDigest(setup));
  record.set_contribution_key(contribution_keys.front());
  if (contribution_keys.size() > 1) {
    for (const std::string& key : contribution_keys) record.add_part_keys(key);
  }
  record.set_task_id(item.task_id());
  record.set_round(item.round());
  record.set_stage(item.stage());
  record.set_dataset_id(item.spec().dataset().id());
  record.set_model_hash(item.model_hash());
  record.set_noise_multiplier(ReleaseNoiseMultiplier(item.spec(), item.stage()).value_or(0));
  record.set_expires_unix_ms(
      absl::ToUnixMillis(absl::FromUnixMillis(item.deadline_unix_ms()) + kRetention));

  const crypto::SecretBytes rounding_key =
      RoundingKey(item.spec().seed(), item.round(), item.stage(), identity_.client_id);
  auto words = secagg::EncodeVector(values, setup.encoding(), &rounding_key);
  if (!words.ok()) {
    // The encoding is the site's own for the stage (CheckSetup), so only a length mismatch
    // between the stage's layout and its encoding, a bug, gets here.
    common::LogError("encode_failed")
        .With("session", record.session())
        .With("error", words.status().ToString());
    return Declined(item, v1::Decline::COMPUTE_ERROR,
                    "local computation failed (details in the site's log)");
  }
  secagg::ClientPolicy policy = SecAggPolicy(policy_);
  policy.min_threshold = PolicyMinThreshold(policy_, static_cast<uint32_t>(setup.invited_size()));
  v1::SecAggClientMessage reply;
  v1::SecAggClientAbort abort = v1::SECAGG_CLIENT_ABORT_UNSPECIFIED;
  auto machine =
      secagg::SecAggClient::Start(identity_, policy, setup, std::move(*words), now, &reply, &abort);
  if (!machine.ok()) {
    return Abort(record, item,
                 abort == v1::SECAGG_CLIENT_ABORT_UNSPECIFIED ? v1::SECAGG_BAD_SETUP : abort,
                 std::string(machine.status().message()));
  }
  record.set_state(v1::SITE_SESSION_OPEN);
  // The input, the bulk of the snapshot until the masked input, is written once, here; the
  // store keeps it with the snapshot of every later step (SiteSessionRecord.machine_input).
  record.set_machine(std::string((*machine)->SnapshotWithoutInput().view()));
  record.set_machine_input(std::string((*machine)->InputBytes().view()));
  machines_[record.session()] = Cached{std::move(*machine), 0};
  v1::PushResultRequest answer;
  answer.set_work_id(item.work_id());
  *answer.mutable_secagg() = std::move(reply);
  return Record(record, item, std::move(answer), /*contributes=*/false, now);
}

secagg::SecAggClient* SecureSessions::Machine(const v1::SiteSessionRecord& record) {
  auto it = machines_.find(record.session());
  if (it != machines_.end() && it->second.answers == record.answers_size()) {
    return it->second.machine.get();
  }
  // Not held (a restart, or a step answered meanwhile by another path): the snapshot and
  // its input from the store.
  auto stored = store_->GetSession(record.session());
  if (!stored.ok()) {
    common::LogError("site_store_read_failed").With("error", stored.status().ToString());
    return nullptr;
  }
  const crypto::SecretBytes input = TakeInput(*stored);
  crypto::SecretBytes snapshot(std::move(*stored->mutable_machine()));
  stored->clear_machine();
  secagg::ClientPolicy policy = SecAggPolicy(policy_);
  policy.min_threshold = policy_.min_cohort();
  auto restored = secagg::SecAggClient::Restore(identity_, policy, snapshot, &input);
  if (!restored.ok()) {
    common::LogError("secagg_restore_failed")
        .With("session", record.session())
        .With("error", restored.status().ToString());
    return nullptr;
  }
  Cached& cached = machines_[record.session()];
  cached.machine = std::move(*restored);
  cached.answers = record.answers_size();
  return cached.machine.get();
}

v1::PushResultRequest SecureSessions::Continue(const v1::WorkItem& item, absl::Time now) {
  const std::string& label = item.secagg_session();
  // Without the snapshot: the machine is usually held in memory (Machine reads it if not).
  auto stored = store_->GetSessionWithoutSecrets(label);
  if (!stored.ok()) {
    if (stored.status().code() != absl::StatusCode::kNotFound) {
      common::LogError("site_store_read_failed").With("error", stored.status().ToString());
    }
    return Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED,
                    "no session of this site with this label (it never joined it, or the "
                    "session's record expired)");
  }
  v1::SiteSessionRecord& record = *stored;
  const std::string digest = RequestDigest(item);
  for (const v1::StepAnswer& answered : record.answers()) {
    if (answered.step() != static_cast<uint32_t>(item.secagg().round())) continue;
    if (answered.request_sha256() == digest) {
      if (VectorForgotten(answered)) {
        // Only a coordinator that went back (restored from an old backup) asks for it now.
        return Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED,
                        "this site's answer to that step is no longer kept: the session had "
                        "moved past it");
      }
      return answered.answer();  // the same answer again
    }
    if (record.state() == v1::SITE_SESSION_OPEN) {
      return Abort(record, item, v1::SECAGG_REQUEST_CHANGED,
                   "a step this site already answered was asked again with another request");
    }
    return Declined(item, v1::Decline::SECURE_AGGREGATION_ABORTED,
                    absl::StrCat(v1::SecAggClientAbort_Name(v1::SECAGG_REQUEST_CHANGED),
                                 ": this site already answered this step with another request"));
  }
  if (record.state() != v1::SITE_SESSION_OPEN) {
    return Declined(
        item, v1::Decline::SECURE_AGGREGATION_ABORTED,
        record.state() == v1::SITE_SESSION_ABORTED
            ? absl::StrCat("this site left the session earlier (", record.abort_reason(), ")")
            : std::string("this site's part of the session is over"));
  }
  if (item.secagg().round() == v1::SECAGG_MASKED_INPUT && record.noise_multiplier() > 0) {
    // Again as the masked input is about to leave: another session may have spent the
    // budget since this one started. Leaving now costs the session this site's input only.
    if (auto refused = CheckBudget(item, record.dataset_id(), record.contribution_key(),
                                   record.noise_multiplier())) {
      End(record, item, *refused, v1::Decline::Reason_Name(v1::Decline::SITE_BUDGET_EXHAUSTED));
      return *std::move(refused);
    }
  }
  secagg::SecAggClient* machine = Machine(record);
  if (machine == nullptr) {
    return Abort(record, item, v1::SECAGG_MALFORMED_MESSAGE,
                 "the session's stored state could not be restored (details in the site's log)");
  }
  auto reply = machine->Handle(item.secagg());
  if (!reply.ok()) {
    // Copies: Abort drops the machine.
    const v1::SecAggClientAbort reason = machine->abort_reason();
    const std::string detail = machine->abort_detail();
    const std::string culprit = machine->culprit();
    return Abort(record, item, reason, detail, culprit);
  }
  const bool completed = machine->state() == secagg::ClientState::kCompleted;
  record.set_state(completed ? v1::SITE_SESSION_COMPLETED : v1::SITE_SESSION_OPEN);
  if (completed) {
    DropMachine(record);
    common::LogInfo("secagg_completed").With("session", label);
  } else {
    record.set_machine(std::string(machine->SnapshotWithoutInput().view()));
  }
  record.set_expires_unix_ms(
      std::max(record.expires_unix_ms(),
               absl::ToUnixMillis(absl::FromUnixMillis(item.deadline_unix_ms()) + kRetention)));
  v1::PushResultRequest answer;
  answer.set_work_id(item.work_id());
  *answer.mutable_secagg() = std::move(*reply);
  return Record(record, item, std::move(answer),
                /*contributes=*/item.secagg().round() == v1::SECAGG_MASKED_INPUT, now, digest);
}

crypto::SecretBytes SecureSessions::RoundingKey(uint64_t task_seed, uint32_t round, v1::Stage stage,
                                                const std::string& client_id) {
  std::string digest = crypto::Sha256(absl::StrCat("tessera/rounding/v1/", task_seed, "/", round,
                                                   "/", static_cast<int>(stage), "/", client_id));
  digest.resize(16);
  return crypto::SecretBytes(std::move(digest));
}

void SecureSessions::ExpireBefore(absl::Time now) {
  if (now < next_expiry_) return;
  next_expiry_ = now + kExpiryInterval;
  auto sessions = store_->ListSessions();
  if (!sessions.ok()) {
    common::LogError("site_store_read_failed").With("error", sessions.status().ToString());
    return;
  }
  for (const v1::SiteSessionRecord& record : *sessions) {  // listed without their secrets
    if (absl::FromUnixMillis(record.expires_unix_ms()) >= now) continue;
    machines_.erase(record.session());
    if (absl::Status st = store_->DeleteSession(record.session()); !st.ok()) {
      common::LogError("site_store_write_failed")
          .With("session", record.session())
          .With("error", st.ToString());
      continue;
    }
    common::LogInfo("secagg_session_forgotten")
        .With("session", record.session())
        .With("state", v1::SiteSessionState_Name(record.state()));
  }
}

}  // namespace tessera::client
