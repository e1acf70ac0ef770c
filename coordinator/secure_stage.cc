#include "coordinator/secure_stage.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "proto/labels.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "secagg/vector_codec.h"

namespace tessera::coordinator {

using secagg::SecAggServer;
using secagg::ServerState;

// The sink of one session: owns the server state machine, so that an answer still in
// flight when the session ends never touches a destroyed object.
class SessionSink final : public ResultSink {
 public:
  SessionSink(std::unique_ptr<SecAggServer> server, std::string session, StageObserver* observer)
      : server_(std::move(server)), session_(std::move(session)), observer_(observer) {}

  absl::Status Accept(const std::string& client_id, const v1::PushResultRequest& result) override {
    v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      step = server_->round();
      if (result.has_decline()) {
        const v1::Decline& d = result.decline();
        if (d.reason() == v1::Decline::ALREADY_CONTRIBUTED) already_contributed_.insert(client_id);
        server_->Drop(
            client_id, v1::SECAGG_DROP_CLIENT_ABORTED,
            absl::StrCat(v1::Decline::Reason_Name(d.reason()), ": ", d.detail().substr(0, 200)));
        return absl::OkStatus();
      }
      if (!result.has_secagg()) {
        server_->Drop(client_id, v1::SECAGG_DROP_MALFORMED,
                      "answer without a secure-aggregation message");
        return absl::InvalidArgumentError("answers must carry a secure-aggregation message");
      }
      status = server_->Receive(client_id, result.secagg());
      if (status.ok() && result.secagg().has_masked_input()) masked_inputs_.insert(client_id);
    }
    if (status.ok() && observer_ != nullptr) observer_->AnswerAccepted(session_, step, client_id);
    return status;
  }

  // Waits until every client expected in the current step answered, `deadline` passes or
  // the session is cancelled.
  void WaitForStep(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cancelled_ || server_->state() != ServerState::kCollecting ||
             server_->Pending().empty();
    };
    mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  }

  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    server_->Cancel();
  }

  // Runs `f(server)` under the sink's lock.
  template <typename F>
  auto With(F f) {
    absl::MutexLock lock(&mu_);
    return f(*server_);
  }

  std::vector<std::string> MaskedInputs() {
    absl::MutexLock lock(&mu_);
    return {masked_inputs_.begin(), masked_inputs_.end()};
  }
  std::vector<std::string> AlreadyContributed() {
    absl::MutexLock lock(&mu_);
    return {already_contributed_.begin(), already_contributed_.end()};
  }

 private:
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  const std::unique_ptr<SecAggServer> server_ ABSL_GUARDED_BY(mu_);
  const std::string session_;
  StageObserver* const observer_;
  std::set<std::string> masked_inputs_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> already_contributed_ ABSL_GUARDED_BY(mu_);
};

namespace {

// The set-up of a new session: nonce, what is summed, and what the first items carry (spec
// hash, N, standardisation), all of which every site signs over.
absl::StatusOr<v1::SecAggSetup> NewSetup(const SecureStageRequest& request) {
  v1::SecAggSetup setup;
  setup.set_protocol_version(secagg::kProtocolVersion);
  auto nonce = crypto::RandomBytes(secagg::kSessionNonceBytes);
  if (!nonce.ok()) return nonce.status();
  setup.set_session_nonce(std::string(nonce->view()));
  setup.set_task_id(request.task_id);
  setup.set_round(request.round);
  setup.set_stage(static_cast<uint32_t>(request.stage));
  setup.set_attempt(request.attempt);
  setup.set_model_hash(request.first_item.model_hash());
  setup.set_threshold(request.threshold);
  for (const std::string& c : request.cohort) setup.add_invited(c);
  setup.set_vector_words(static_cast<uint32_t>(secagg::EncodedWords(request.encoding)));
  *setup.mutable_encoding() = request.encoding;
  setup.set_spec_hash(request.first_item.spec_hash());
  setup.set_pooled_rows(request.first_item.standardization().num_train_rows());
  if (request.first_item.has_standardization()) {
    setup.set_standardization_hash(crypto::HashMessage(request.first_item.standardization()));
  }
  return setup;
}

}  // namespace

SecureStageRunner::SecureStageRunner(WorkBoard* board, const common::Clock* clock,
                                     std::string ca_cert_pem, StageObserver* observer)
    : board_(board), clock_(clock), ca_cert_pem_(std::move(ca_cert_pem)), observer_(observer) {}

std::string SecureStageRunner::SessionLabel(const std::string& task_id, uint32_t round,
                                            v1::Stage stage, uint32_t attempt) {
  return absl::StrCat(task_id, "/r", round, "/", proto::StageLabel(stage), "/a", attempt);
}

void SecureStageRunner::Cancel() {
  std::shared_ptr<SessionSink> active;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    active = active_;
  }
  if (active != nullptr) active->Cancel();
}

absl::StatusOr<std::unique_ptr<SecAggServer>> SecureStageRunner::OpenServer(
    const SecureStageRequest& request, SecureStageResult* result) {
  secagg::ServerOptions options;
  options.ca_cert_pem = ca_cert_pem_;
  options.now = clock_->Now();
  options.unmasking_threads = 2;
  absl::StatusOr<std::unique_ptr<SecAggServer>> server;
  if (request.resume.has_value()) {
    server = SecAggServer::Restore(*request.resume, options);
  } else {
    absl::StatusOr<v1::SecAggSetup> setup = NewSetup(request);
    if (!setup.ok()) {
      result->abort = absl::StrCat("no session set-up: ", setup.status().message());
      return setup.status();
    }
    server = SecAggServer::Create(*setup, options);
  }
  if (!server.ok()) {
    // The coordinator refuses a set-up it should not run (e.g. a bit budget that could
    // overflow for this cohort), or a stored snapshot it cannot continue.
    result->abort = absl::StrCat(request.resume ? "stored session refused: " : "set-up refused: ",
                                 server.status().message());
    return server.status();
  }
  if (!request.resume.has_value() && request.persist) {
    // The session's opening is recorded before its first step is posted.
    absl::StatusOr<v1::SecAggServerSnapshot> snapshot = (*server)->Snapshot();
    absl::Status kept = snapshot.ok() ? request.persist(*snapshot) : snapshot.status();
    if (!kept.ok()) {
      result->stopped = kept;
      result->abort = absl::StrCat("session not recorded: ", kept.message());
      return kept;
    }
  }
  return server;
}

void SecureStageRunner::RunSteps(const SecureStageRequest& request, const std::string& session,
                                 size_t invited, const std::shared_ptr<SessionSink>& sink,
                                 SecureStageResult* result) {
  while (true) {
    std::map<std::string, v1::SecAggServerMessage> outgoing;
    v1::SecAggRound round = v1::SECAGG_ROUND_UNSPECIFIED;
    bool collecting = sink->With([&](SecAggServer& s) {
      if (s.state() != ServerState::kCollecting) return false;
      outgoing = s.Outgoing();
      round = s.round();
      return true;
    });
    if (!collecting) return;
    if (observer_ != nullptr) observer_->StepPersisted(session, round);
    const int step = static_cast<int>(round) - static_cast<int>(v1::SECAGG_ADVERTISE_KEYS);
    const absl::Time deadline =
        clock_->Now() + (step == 0 ? request.first_step_deadline : request.step_deadline);
    const std::string work_id = absl::StrCat(session, "/s", step);
    std::map<std::string, v1::WorkItem> items;
    for (auto& [client, message] : outgoing) {
      v1::WorkItem item;
      if (step == 0) item = request.first_item;
      item.set_work_id(work_id);
      item.set_task_id(request.task_id);
      item.set_round(request.round);
      item.set_stage(request.stage);
      item.set_cohort_size(static_cast<uint32_t>(invited));
      item.set_deadline_unix_ms(common::ToUnixMillis(deadline));
      item.set_secagg_session(session);
      *item.mutable_secagg() = std::move(message);
      items[client] = std::move(item);
    }
    absl::Status posted = board_->Post(work_id, std::move(items), sink);
    if (!posted.ok()) {
      // Work ids are unique per session step; a clash is a bug here.
      common::LogError("secagg_post_failed").With("work", work_id).With("error", posted.ToString());
      sink->Cancel();
    } else {
      sink->WaitForStep(deadline);
    }
    board_->Close(work_id);
    absl::StatusOr<v1::SecAggServerSnapshot> snapshot;
    ServerState state = sink->With([&](SecAggServer& s) {
      const ServerState after = s.state() == ServerState::kCollecting ? s.CloseRound() : s.state();
      if (after == ServerState::kCollecting) snapshot = s.Snapshot();
      return after;
    });
    common::LogInfo("secagg_step_closed")
        .With("session", session)
        .With("step", proto::StepLabel(round))
        .With("state", state == ServerState::kCompleted ? "completed"
                       : state == ServerState::kAborted ? "aborted"
                                                        : "collecting");
    if (state == ServerState::kCollecting && request.persist) {
      absl::Status kept = snapshot.ok() ? request.persist(*snapshot) : snapshot.status();
      if (!kept.ok()) {
        result->stopped = kept;
        sink->Cancel();
        common::LogWarning("secagg_session_stopped")
            .With("session", session)
            .With("why", std::string(kept.message()));
      }
    }
  }
}

void SecureStageRunner::Collect(SessionSink& sink, const v1::SecAggEncoding& encoding,
                                SecureStageResult* result) {
  result->masked_inputs = sink.MaskedInputs();
  result->already_contributed = sink.AlreadyContributed();
  sink.With([&](SecAggServer& s) {
    for (const secagg::ClientDrop& d : s.drops()) {
      result->drops.push_back(absl::StrCat(d.client_id, ": ", proto::StepLabel(d.round), ": ",
                                           v1::SecAggDropReason_Name(d.reason), ": ", d.detail));
      if (d.reason == v1::SECAGG_DROP_NO_ANSWER) result->unresponsive.push_back(d.client_id);
    }
    if (s.state() == ServerState::kCompleted) {
      auto sums = secagg::DecodeSum(s.sum(), encoding);
      if (sums.ok()) {
        result->completed = true;
        result->sums = std::move(*sums);
        result->survivors = s.survivors();
      } else {
        result->abort = absl::StrCat("sum does not decode: ", sums.status().message());
      }
    } else if (!result->stopped.ok()) {
      result->abort = absl::StrCat("stopped before the next step: ", result->stopped.message());
    } else {
      result->abort =
          absl::StrCat(v1::SecAggServerAbort_Name(s.abort_reason()), ": ", s.abort_detail());
    }
    return 0;
  });
}

SecureStageResult SecureStageRunner::Run(const SecureStageRequest& request) {
  SecureStageResult result;
  const std::string session =
      SessionLabel(request.task_id, request.round, request.stage, request.attempt);
  absl::StatusOr<std::unique_ptr<SecAggServer>> server = OpenServer(request, &result);
  if (!server.ok()) return result;
  const v1::SecAggSetup& setup = request.resume ? request.resume->setup() : v1::SecAggSetup();
  const v1::SecAggEncoding encoding = request.resume ? setup.encoding() : request.encoding;
  const size_t invited =
      request.resume ? static_cast<size_t>(setup.invited_size()) : request.cohort.size();
  auto sink = std::make_shared<SessionSink>(std::move(*server), session, observer_);
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      result.abort = "cancelled";
      return result;
    }
    active_ = sink;
  }
  common::LogInfo(request.resume ? "secagg_session_resumed" : "secagg_session_open")
      .With("session", session)
      .With("invited", static_cast<uint64_t>(invited))
      .With("words", static_cast<uint64_t>(secagg::EncodedWords(encoding)));
  RunSteps(request, session, invited, sink, &result);
  Collect(*sink, encoding, &result);
  {
    absl::MutexLock lock(&mu_);
    active_.reset();
  }
  common::LogInfo("secagg_session_closed")
      .With("session", session)
      .With("completed", result.completed)
      .With("survivors", static_cast<uint64_t>(result.survivors.size()))
      .With("dropped", static_cast<uint64_t>(result.drops.size()))
      .With("abort", result.abort);
  return result;
}

}  // namespace tessera::coordinator
