#include "coordinator/session_sink.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::coordinator {

using secagg::ServerState;

absl::Status SessionSink::Accept(const std::string& client_id,
                                 const v1::PushResultRequest& result) {
  v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    step = server_->round();
    ++answers_version_;
    if (result.has_decline()) {
      Declined(client_id, step, result.decline());
      return absl::OkStatus();
    }
    if (!result.has_secagg()) {
      server_->Drop(client_id, v1::SECAGG_DROP_MALFORMED,
                    "answer without a secure-aggregation message");
      return absl::InvalidArgumentError("answers must carry a secure-aggregation message");
    }
    status = server_->Receive(client_id, result.secagg());
    if (status.ok() && result.secagg().has_masked_input()) masked_inputs_.insert(client_id);
    if (status.ok()) declines_.erase(client_id);
    if (status.ok() && step == v1::SECAGG_ADVERTISE_KEYS) {
      awaiting_.erase(client_id);
      ++advertised_;
      v1::SiteDecision approved;
      approved.set_client_id(client_id);
      approved.set_state(v1::SITE_APPROVED);
      Heard(approved);
    }
  }
  if (status.ok() && observer_ != nullptr) observer_->AnswerAccepted(session_, step, client_id);
  return status;
}

bool SessionSink::WaitForStep(const common::Clock& clock, absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return StepAnswered(); };
  return clock.AwaitWithDeadline(&mu_, absl::Condition(&done), until);
}

std::vector<std::string> SessionSink::TakeReoffers() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out(to_reoffer_.begin(), to_reoffer_.end());
  to_reoffer_.clear();
  return out;
}

void SessionSink::Expel(const std::string& client_id, const std::string& why) {
  absl::MutexLock lock(&mu_);
  expelled_[client_id] = why.substr(0, 200);
  DropExpelledLocked();
}

void SessionSink::DropExpelled() {
  absl::MutexLock lock(&mu_);
  DropExpelledLocked();
}

void SessionSink::DropAwaiting() {
  absl::MutexLock lock(&mu_);
  for (const std::string& id : awaiting_) {
    server_->Drop(id, v1::SECAGG_DROP_CLIENT_ABORTED,
                  absl::StrCat("AWAITING_APPROVAL: ", decisions_[id].reason().substr(0, 200)));
  }
  awaiting_.clear();
  to_reoffer_.clear();
}

std::optional<SiteDecisions> SessionSink::Decisions(bool only_if_changed) {
  absl::MutexLock lock(&mu_);
  if (only_if_changed && reported_version_ == version_) return std::nullopt;
  reported_version_ = version_;
  return decisions_;
}

void SessionSink::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  server_->Cancel();
}

std::vector<std::string> SessionSink::MaskedInputs() {
  absl::MutexLock lock(&mu_);
  return {masked_inputs_.begin(), masked_inputs_.end()};
}

void SessionSink::SetFetchedFirst(std::set<std::string> fetched) {
  absl::MutexLock lock(&mu_);
  if (fetched != fetched_first_) ++answers_version_;
  fetched_first_ = std::move(fetched);
}

std::optional<SessionFacts> SessionSink::Facts(bool only_if_changed) {
  absl::MutexLock lock(&mu_);
  const std::tuple<uint64_t, int, int, size_t> version = {
      answers_version_, static_cast<int>(server_->state()), static_cast<int>(server_->round()),
      server_->drops().size()};
  if (only_if_changed && version == reported_facts_) return std::nullopt;
  reported_facts_ = version;
  SessionFacts f;
  f.invited = invited_;
  f.completed = server_->state() == ServerState::kCompleted;
  if (f.completed) f.survivors = server_->survivors();
  f.running = server_->state() == ServerState::kCollecting;
  if (f.running) {
    f.step = server_->round();
    f.pending = server_->Pending();
  }
  f.declines = declines_;
  for (const secagg::ClientDrop& d : server_->drops()) {
    f.drops.push_back({d.client_id, d.round, d.reason, d.detail});
  }
  f.fetched_first = fetched_first_;
  return f;
}

std::vector<std::string> SessionSink::AlreadyContributed() {
  absl::MutexLock lock(&mu_);
  return {already_contributed_.begin(), already_contributed_.end()};
}

std::map<std::string, Accusation> SessionSink::Accusations() {
  absl::MutexLock lock(&mu_);
  return accusations_;
}

void SessionSink::Declined(const std::string& client_id, v1::SecAggRound step,
                           const v1::Decline& d) {
  if (d.reason() == v1::Decline::ALREADY_CONTRIBUTED) already_contributed_.insert(client_id);
  if (d.reason() == v1::Decline::SECURE_AGGREGATION_ABORTED && !d.culprit().empty() &&
      d.culprit() != client_id &&
      std::find(invited_.begin(), invited_.end(), d.culprit()) != invited_.end()) {
    accusations_[client_id] = {d.culprit(), CleanReason(d.detail()).substr(0, 200)};
  }
  declines_[client_id] = SessionFacts::Declined{step, d};
  if (std::optional<v1::SiteDecision> decision = DecisionOf(client_id, d)) Heard(*decision);
  if (d.reason() == v1::Decline::AWAITING_APPROVAL && step == v1::SECAGG_ADVERTISE_KEYS &&
      server_->Pending().contains(client_id)) {
    // Still expected: its item is offered again until the step closes.
    awaiting_.insert(client_id);
    to_reoffer_.insert(client_id);
    return;
  }
  server_->Drop(
      client_id, v1::SECAGG_DROP_CLIENT_ABORTED,
      absl::StrCat(v1::Decline::Reason_Name(d.reason()), ": ", d.detail().substr(0, 200)));
  if (d.reason() == v1::Decline::REJECTED_BY_SITE) {
    // The site's staff said no: the task ends (task_runner.h), so the session stops now
    // rather than summing without the site.
    cancelled_ = true;
    server_->Cancel();
  }
}

void SessionSink::Heard(const v1::SiteDecision& decision) {
  v1::SiteDecision& kept = decisions_[decision.client_id()];
  if (kept.state() == decision.state() && kept.reason() == decision.reason()) return;
  kept = decision;
  ++version_;
}

void SessionSink::DropExpelledLocked() {
  if (expelled_.empty()) return;
  const std::set<std::string> pending = server_->Pending();
  // Before the masked inputs, an expelled site's answer to the current step is discarded
  // too: the step closes as if it had not answered, so a session that cannot go on without
  // it aborts before any site sends its masked input (sent once a round: a session aborted
  // after some had sent theirs could not be tried again with them). From the masked input
  // on, only a site yet to answer is dropped: an input summed stays, shares help unmask.
  const v1::SecAggRound step = server_->round();
  const bool before_inputs = step == v1::SECAGG_ADVERTISE_KEYS || step == v1::SECAGG_REVEAL_COINS ||
                             step == v1::SECAGG_SHARE_KEYS;
  // Drop ignores a site dropped already; one it takes grows drops(), which Facts watches.
  for (const auto& [id, why] : expelled_) {
    if (before_inputs || pending.contains(id)) {
      server_->Drop(id, v1::SECAGG_DROP_BAD_CERTIFICATE, why);
    }
  }
}

bool SessionSink::StepAnswered() {
  if (cancelled_ || server_->state() != ServerState::kCollecting) return true;
  bool waiting_for_approval = false;
  for (const std::string& id : server_->Pending()) {
    if (!awaiting_.contains(id)) return false;
    waiting_for_approval = true;
  }
  return !waiting_for_approval || advertised_ >= threshold_;
}

}  // namespace tessera::coordinator
