#include "coordinator/secure_stage.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/culprits.h"
#include "coordinator/internal/setup_bytes.h"
#include "coordinator/session_sink.h"
#include "coordinator/site_answers.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "proto/labels.h"
#include "secagg/neighbourhood.h"
#include "secagg/protocol.h"
#include "secagg/server.h"
#include "secagg/vector_codec.h"

namespace tessera::coordinator {

using secagg::SecAggServer;
using secagg::ServerState;

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
  if (request.sparse.has_value()) *setup.mutable_sparse() = *request.sparse;
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

// Hands `write` the server's snapshot at a step boundary, as pieces viewing its relays
// and sum (SecureStageRequest::SnapshotSource).
absl::Status WriteSnapshot(const SecAggServer& server,
                           const SecureStageRequest::SnapshotWriter& write) {
  absl::StatusOr<SecAggServer::SnapshotPieces> pieces = server.SnapshotInPieces();
  if (!pieces.ok()) return pieces.status();
  return write(pieces->pieces());
}

// Expels from `sink`'s session every invited site `request.excluded` now refuses.
void ExpelExcluded(const SecureStageRequest& request, SessionSink& sink) {
  if (!request.excluded) return;
  for (const std::string& id : sink.Invited()) {
    if (request.excluded(id)) {
      sink.Expel(id,
                 "refused by the coordinator since it was invited (revoked, expired or "
                 "disabled)");
    }
  }
}

}  // namespace

absl::StatusOr<std::optional<v1::SecAggSparse>> SessionSparseSetup(const v1::TaskSpec& spec,
                                                                   uint32_t invited) {
  const v1::SecureAggregationSpec& sa = spec.secure_aggregation();
  if (!sa.has_secagg_plus() || invited < sa.secagg_plus().min_sites()) return std::nullopt;
  return secagg::SparseSetup(invited, sa.secagg_plus().colluding_fraction(),
                             sa.secagg_plus().dropout_fraction(), secagg::kSecAggPlusSecurityBits,
                             secagg::kSecAggPlusCorrectnessBits);
}

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

void SecureStageRunner::Expel(const std::string& client_id, const std::string& why) {
  std::shared_ptr<SessionSink> active;
  {
    absl::MutexLock lock(&mu_);
    active = active_;
  }
  if (active != nullptr) active->Expel(client_id, why);
}

absl::StatusOr<std::vector<std::string>> SecureStageRunner::ListedCertificates(
    const std::string& session, const std::string& requester,
    const std::vector<std::string>& sha256s) {
  std::shared_ptr<SessionSink> active;
  {
    absl::MutexLock lock(&mu_);
    active = active_;
  }
  if (active == nullptr || active->session() != session) {
    return absl::NotFoundError(absl::StrCat("session ", session.substr(0, 128), " is not running"));
  }
  return active->With(
      [&](const SecAggServer& s) { return s.ListedCertificates(requester, sha256s); });
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
    SecAggServer& opened = **server;
    absl::Status kept = request.persist(opened.round(), std::nullopt,
                                        [&opened](const SecureStageRequest::SnapshotWriter& write) {
                                          return WriteSnapshot(opened, write);
                                        });
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
    // The step's message: one for every site (then kept once, in the shared bytes), or one
    // each (the share relays).
    std::optional<v1::SecAggServerMessage> broadcast;
    std::vector<std::string> recipients;
    // Each site's own message, serialized (the share relays: n shares each, shared with the
    // server, not copied).
    std::map<std::string, SecAggServer::OutgoingMessage> outgoing;
    v1::SecAggRound round = v1::SECAGG_ROUND_UNSPECIFIED;
    bool collecting = sink->With([&](SecAggServer& s) {
      if (s.state() != ServerState::kCollecting) return false;
      broadcast = s.Broadcast();
      if (broadcast.has_value()) {
        recipients = s.Recipients();
      } else {
        outgoing = s.OutgoingBytes();
      }
      round = s.round();
      return true;
    });
    if (!collecting) return;
    if (observer_ != nullptr) observer_->StepPersisted(session, round);
    const int step = static_cast<int>(round) - static_cast<int>(v1::SECAGG_ADVERTISE_KEYS);
    const absl::Time deadline =
        clock_->Now() + (step == 0 ? request.first_step_deadline : request.step_deadline);
    const std::string work_id = absl::StrCat(session, "/s", step);
    // The set-up's spec, model and standardisation: serialized once, shared by every
    // site's first item (a step to n sites holds one copy of the model).
    std::shared_ptr<const std::string> shared, model;
    std::shared_ptr<ModelDeltaVariant> delta;
    if (step == 0) {
      absl::StatusOr<std::shared_ptr<const std::string>> made =
          request.model ? request.model() : nullptr;
      if (!made.ok()) {
        result->stopped = made.status();
        sink->Cancel();
        common::LogWarning("secagg_session_stopped")
            .With("session", session)
            .With("why", std::string(made.status().message()));
        continue;  // the cancelled server ends the session
      }
      internal::SetupBytes setup =
          internal::SharedSetupBytes(request.first_item, *made, request.model_delta);
      shared = std::move(setup.shared);
      model = std::move(setup.model);
      delta = std::move(setup.delta);
    }
    const bool shared_message = broadcast.has_value();
    if (shared_message) {
      // A message every site gets alike (the set-up, the advertisement list, the coins, the
      // survivors, the unmasking request) is serialized once too.
      v1::WorkItem fields;
      *fields.mutable_secagg() = *std::move(broadcast);
      std::string bytes = shared != nullptr ? *shared : std::string();
      fields.AppendToString(&bytes);
      shared = std::make_shared<const std::string>(std::move(bytes));
      if (delta != nullptr) {
        bytes = *delta->shared;
        fields.AppendToString(&bytes);
        delta->shared = std::make_shared<const std::string>(std::move(bytes));
      }
      for (const std::string& client : recipients) outgoing[client];  // no message of its own
    }
    std::map<std::string, v1::WorkItem> items;
    std::map<std::string, OwnTail> tails;
    for (auto& [client, message] : outgoing) {
      v1::WorkItem item;
      item.set_work_id(work_id);
      item.set_task_id(request.task_id);
      item.set_round(request.round);
      item.set_stage(request.stage);
      item.set_cohort_size(static_cast<uint32_t>(invited));
      item.set_deadline_unix_ms(common::ToUnixMillis(deadline));
      item.set_secagg_session(session);
      if (!shared_message) {
        // The item's secagg field: its header and the message's head here, the relay's
        // bytes shared with the server.
        OwnTail& tail = tails[client];
        const size_t relay_size = message.relay != nullptr ? message.relay->size() : 0;
        internal::AppendFieldHeader(v1::WorkItem::kSecaggFieldNumber,
                                    message.head.size() + relay_size, &tail.head);
        tail.head += message.head;
        tail.shared = std::move(message.relay);
      }
      items[client] = std::move(item);
    }
    // No answer of this session is larger than a masked input (4 bytes a word) with room
    // for its framing and for the per-peer parts (shares: about 200 bytes a peer).
    const uint64_t largest_answer = 4 * uint64_t{secagg::EncodedWords(request.encoding)} +
                                    uint64_t{2048} * invited + (uint64_t{256} << 10);
    absl::Status posted = board_->Post(work_id, std::move(items), sink, shared, model,
                                       largest_answer, delta, std::move(tails));
    if (!posted.ok()) {
      // Work ids are unique per session step; a clash is a bug here.
      common::LogError("secagg_post_failed").With("work", work_id).With("error", posted.ToString());
      sink->Cancel();
    } else {
      WaitForStep(request, work_id, deadline, step == 0, *sink);
    }
    board_->Close(work_id);
    // A site refused while the step ran (ClientRegistry::Exclude) leaves before it closes,
    // whether or not Coordinator::DropClient's Expel reached this session yet: a site that
    // already holds the new CRL refuses its keys, and the refused site's answer still
    // counted would take the session on to masked inputs it cannot sum (SessionSink::Expel).
    ExpelExcluded(request, *sink);
    v1::SecAggRound next = v1::SECAGG_ROUND_UNSPECIFIED;
    ServerState state = sink->With([&](SecAggServer& s) {
      const ServerState after = s.state() == ServerState::kCollecting ? s.CloseRound() : s.state();
      if (after == ServerState::kCollecting) next = s.round();
      return after;
    });
    common::LogInfo("secagg_step_closed")
        .With("session", session)
        .With("step", proto::StepLabel(round))
        .With("state", state == ServerState::kCompleted ? "completed"
                       : state == ServerState::kAborted ? "aborted"
                                                        : "collecting");
    if (state != ServerState::kCollecting || !request.persist) {
      ReportAttempt(request, *sink, /*ended=*/state != ServerState::kCollecting);
    } else {
      // The step is closed and the next not posted: the server does not change until then.
      // Its answers go with the boundary, in one write.
      absl::Status kept = request.persist(
          next, ChangedAttempt(request, *sink),
          [&sink](const SecureStageRequest::SnapshotWriter& write) {
            return sink->With([&write](SecAggServer& s) { return WriteSnapshot(s, write); });
          });
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

void SecureStageRunner::WaitForStep(const SecureStageRequest& request, const std::string& work_id,
                                    absl::Time deadline, bool first_step, SessionSink& sink) {
  while (true) {
    sink.DropExpelled();
    // Every step wakes up now and then to report the sites' answers so far; the first step
    // also to offer sites awaiting approval their item again.
    absl::Duration nap = request.answers_report_interval;
    if (first_step) nap = std::min(nap, request.approval_poll);
    const absl::Time wake = std::min(deadline, clock_->Now() + nap);
    const bool answered = sink.WaitForStep(*clock_, wake);
    if (request.decisions_changed) {
      if (std::optional<SiteDecisions> heard = sink.Decisions(/*only_if_changed=*/true)) {
        request.decisions_changed(*heard);
      }
    }
    if (first_step) sink.SetFetchedFirst(board_->Fetched(work_id));
    // The step's last answers are reported with its close (RunSteps), in the boundary's
    // write.
    if (answered || clock_->Now() >= deadline) break;
    ReportAttempt(request, sink, /*ended=*/false);
    for (const std::string& client : sink.TakeReoffers()) board_->Reoffer(work_id, client);
  }
  sink.DropAwaiting();
}

v1::StageAttempt SecureStageRunner::AttemptOf(const SecureStageRequest& request,
                                              const SessionFacts& facts) const {
  v1::StageAttempt a;
  a.set_round(request.round);
  a.set_stage(request.stage);
  a.set_attempt(request.attempt);
  a.set_session(SessionLabel(request.task_id, request.round, request.stage, request.attempt));
  a.set_threshold(request.resume ? request.resume->setup().threshold() : request.threshold);
  a.set_started_unix_ms(started_unix_ms_);
  for (v1::SiteAnswer& answer : SiteAnswersOf(facts)) *a.add_sites() = std::move(answer);
  return a;
}

void SecureStageRunner::ReportAttempt(const SecureStageRequest& request, SessionSink& sink,
                                      bool ended) {
  // The ended session is reported by Run's result.
  if (!request.attempt_changed || ended) return;
  if (std::optional<v1::StageAttempt> changed = ChangedAttempt(request, sink)) {
    request.attempt_changed(*changed);
  }
}

std::optional<v1::StageAttempt> SecureStageRunner::ChangedAttempt(const SecureStageRequest& request,
                                                                  SessionSink& sink) {
  std::optional<SessionFacts> facts = sink.Facts(/*only_if_changed=*/true);
  if (!facts.has_value()) return std::nullopt;
  return AttemptOf(request, *facts);
}

void SecureStageRunner::Collect(const SecureStageRequest& request, SessionSink& sink,
                                const v1::SecAggEncoding& encoding, SecureStageResult* result) {
  result->attempt = AttemptOf(request, *sink.Facts(/*only_if_changed=*/false));
  result->masked_inputs = sink.MaskedInputs();
  result->already_contributed = sink.AlreadyContributed();
  result->decisions = *sink.Decisions(/*only_if_changed=*/false);
  for (const Verdict& v : JudgeCulprits(sink.Accusations())) {
    v1::ClientQuarantine& q = result->quarantine[v.client_id];
    q.set_reason(v.reason);
    for (const std::string& id : v.named_by) q.add_named_by(id);
    q.set_since_unix_ms(common::ToUnixMillis(clock_->Now()));
    q.set_task_id(request.task_id);
    q.set_session(SessionLabel(request.task_id, request.round, request.stage, request.attempt));
  }
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
        if (absl::StatusOr<v1::SessionProvenance> p = s.Provenance(); p.ok()) {
          result->provenance = *std::move(p);
        }
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
  started_unix_ms_ = request.resume_started_unix_ms > 0 ? request.resume_started_unix_ms
                                                        : common::ToUnixMillis(clock_->Now());
  const std::string session =
      SessionLabel(request.task_id, request.round, request.stage, request.attempt);
  absl::StatusOr<std::unique_ptr<SecAggServer>> server = OpenServer(request, &result);
  if (!server.ok()) return result;
  const v1::SecAggSetup& setup = request.resume ? request.resume->setup() : v1::SecAggSetup();
  const v1::SecAggEncoding encoding = request.resume ? setup.encoding() : request.encoding;
  const size_t invited =
      request.resume ? static_cast<size_t>(setup.invited_size()) : request.cohort.size();
  const uint32_t threshold = request.resume ? setup.threshold() : request.threshold;
  std::vector<std::string> invited_ids =
      request.resume ? std::vector<std::string>(setup.invited().begin(), setup.invited().end())
                     : request.cohort;
  auto sink = std::make_shared<SessionSink>(std::move(*server), session, threshold,
                                            std::move(invited_ids), observer_);
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      result.abort = "cancelled";
      return result;
    }
    active_ = sink;
  }
  // From here on Expel reaches this session; a site refused before (while the session
  // opened) is dropped now.
  ExpelExcluded(request, *sink);
  common::LogInfo(request.resume ? "secagg_session_resumed" : "secagg_session_open")
      .With("session", session)
      .With("invited", static_cast<uint64_t>(invited))
      .With("words", static_cast<uint64_t>(secagg::EncodedWords(encoding)));
  RunSteps(request, session, invited, sink, &result);
  Collect(request, *sink, encoding, &result);
  // A decoding failure or a refused persist ends a session the server saw complete.
  result.attempt.set_completed(result.completed);
  result.attempt.set_outcome(result.completed ? "" : result.abort);
  result.attempt.set_ended_unix_ms(common::ToUnixMillis(clock_->Now()));
  if (result.provenance.has_value()) result.provenance->set_session(session);
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
  if (observer_ != nullptr) observer_->SessionEnded(session, result);
  return result;
}

}  // namespace tessera::coordinator
