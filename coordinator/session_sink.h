// The result sink of one secure-aggregation session (secure_stage.h): the work board
// hands it the sites' answers; it owns the session's server state machine, so that an
// answer still in flight when the session ends never touches a destroyed object.
//
// Ownership: the runner and the board share it (std::shared_ptr); it owns the server.
// Thread-safe: every method takes the sink's lock (With runs its function under it).
// Errors: Accept returns the server's verdict on an answer (INVALID_ARGUMENT for an answer
// without a secure-aggregation message); nothing a site sends ends the process.
#ifndef TESSERA_COORDINATOR_SESSION_SINK_H_
#define TESSERA_COORDINATOR_SESSION_SINK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/culprits.h"
#include "coordinator/secure_stage.h"
#include "coordinator/site_answers.h"
#include "coordinator/site_decisions.h"
#include "coordinator/work_board.h"
#include "secagg/server.h"

namespace tessera::coordinator {

// The sink of one session: owns the server state machine, so that an answer still in
// flight when the session ends never touches a destroyed object. It also keeps the sites'
// decisions on the task heard in the session, and which sites await their staff's approval.
class SessionSink final : public ResultSink {
 public:
  SessionSink(std::unique_ptr<secagg::SecAggServer> server, std::string session, uint32_t threshold,
              std::vector<std::string> invited, StageObserver* observer)
      : server_(std::move(server)),
        session_(std::move(session)),
        threshold_(threshold),
        invited_(std::move(invited)),
        observer_(observer) {}

  absl::Status Accept(const std::string& client_id, const v1::PushResultRequest& result) override;

  // Waits until the step is answered (below), `clock` reaches `until` or the session is
  // cancelled; true unless `until` came first.
  bool WaitForStep(const common::Clock& clock, absl::Time until);

  // The sites that declined AWAITING_APPROVAL since the last call: their item is to be
  // offered again.
  std::vector<std::string> TakeReoffers();

  // A site the coordinator no longer serves (certificate revoked or expired, disabled by an
  // operator: Coordinator::DropClient) leaves the session now, and at every later step of
  // it, rather than being waited for until the step's deadline. Before the masked inputs
  // its answer to the current step is discarded too (session_sink.cc says why).
  void Expel(const std::string& client_id, const std::string& why);
  void DropExpelled();
  // The session's invited sites (fixed at construction).
  const std::vector<std::string>& Invited() const { return invited_; }

  // The step closes: sites still awaiting approval leave the session (not as unresponsive).
  void DropAwaiting();

  // The decisions heard so far if they changed since the last call with `only_if_changed`.
  std::optional<SiteDecisions> Decisions(bool only_if_changed);

  void Cancel();

  const std::string& session() const { return session_; }

  // Runs `f(server)` under the sink's lock.
  template <typename F>
  auto With(F f) {
    absl::MutexLock lock(&mu_);
    return f(*server_);
  }

  std::vector<std::string> MaskedInputs();
  // The sites that fetched the first step's item (WorkBoard::Fetched), as last told.
  void SetFetchedFirst(std::set<std::string> fetched);

  // What the session saw so far (site_answers.h), if anything changed since the last call
  // with `only_if_changed`.
  std::optional<SessionFacts> Facts(bool only_if_changed);

  std::vector<std::string> AlreadyContributed();

  // Which site named which invited peer as the culprit of its abort (culprits.h).
  std::map<std::string, Accusation> Accusations();

 private:
  // A site's decline: kept, and the site dropped (or, awaiting approval in the first step,
  // still expected and offered its item again).
  void Declined(const std::string& client_id, v1::SecAggRound step, const v1::Decline& d)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A decision on the task heard from a site (counted once per change).
  void Heard(const v1::SiteDecision& decision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Every expected site answered, except sites awaiting approval when enough others
  // advertised keys to reach the threshold without them.
  void DropExpelledLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool StepAnswered() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  const std::unique_ptr<secagg::SecAggServer> server_ ABSL_GUARDED_BY(mu_);
  const std::string session_;
  const uint32_t threshold_;
  const std::vector<std::string> invited_;
  StageObserver* const observer_;
  // Each site's last answer if it was a decline, the sites that fetched the first step's
  // item, and a counter of answers (for reporting changes).
  std::map<std::string, SessionFacts::Declined> declines_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> fetched_first_ ABSL_GUARDED_BY(mu_);
  uint64_t answers_version_ ABSL_GUARDED_BY(mu_) = 0;
  std::tuple<uint64_t, int, int, size_t> reported_facts_ ABSL_GUARDED_BY(mu_) = {~uint64_t{0}, 0, 0,
                                                                                 0};
  std::set<std::string> masked_inputs_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> already_contributed_ ABSL_GUARDED_BY(mu_);
  // By naming site: the invited peer its abort named as the culprit.
  std::map<std::string, Accusation> accusations_ ABSL_GUARDED_BY(mu_);
  // First step: sites whose last answer was AWAITING_APPROVAL (still expected), those of
  // them whose item is to be offered again, and how many advertisements were accepted.
  std::set<std::string> awaiting_ ABSL_GUARDED_BY(mu_);
  // Sites expelled from the session (Expel), with why.
  std::map<std::string, std::string> expelled_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> to_reoffer_ ABSL_GUARDED_BY(mu_);
  uint32_t advertised_ ABSL_GUARDED_BY(mu_) = 0;
  SiteDecisions decisions_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reported_version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SESSION_SINK_H_
