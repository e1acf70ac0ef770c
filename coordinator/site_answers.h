// Each invited site's answer in each secure-aggregation session of a stage (v1::StageAttempt,
// proto/state.proto): contributed, declined with the site's reason, dropped at a step, not
// connected, no answer, or no sum for another reason. The coordinator keeps them in the round
// in flight (InFlightRound.stage_attempts) while the round runs, commits them with the round
// (RoundRecord.stage_attempts) and, for a failed task, with the task (TaskRecord
// .failed_round_attempts). The failure reason and the "waiting for sites" message of a task
// are worded here too.
//
// Nothing here holds a data value: declines and drops carry the sites' reason codes and
// their fixed detail texts (cleaned with CleanReason).
//
// Pure functions; thread-safe.
#ifndef TESSERA_COORDINATOR_SITE_ANSWERS_H_
#define TESSERA_COORDINATOR_SITE_ANSWERS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/federation.pb.h"
#include "proto/state.pb.h"

namespace tessera::coordinator {

// How many sessions of a round are kept (the oldest are dropped first): a round may take
// max_round_attempts sessions and more while sites decide on the task.
inline constexpr int kMaxAttemptsKept = 10;

// What a session saw, as SecureStageRunner collects it.
struct SessionFacts {
  struct Declined {
    v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
    v1::Decline decline;
  };
  struct Dropped {
    std::string client_id;
    v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
    v1::SecAggDropReason reason = v1::SECAGG_DROP_REASON_UNSPECIFIED;
    std::string detail;
  };
  std::vector<std::string> invited;
  // Sites whose input is in the sum (when completed).
  std::vector<std::string> survivors;
  bool completed = false;
  // Whether the session still runs, the step it is in, and who has not answered it.
  bool running = false;
  v1::SecAggRound step = v1::SECAGG_ROUND_UNSPECIFIED;
  std::set<std::string> pending;
  // The last decline of each site whose last answer was a decline.
  std::map<std::string, Declined> declines;
  // The server's drops, in order.
  std::vector<Dropped> drops;
  // Sites that fetched the first step's work item (the others were not connected).
  std::set<std::string> fetched_first;
};

// One answer per invited site, sorted by client id:
//   - in the sum                                   -> CONTRIBUTED;
//   - declined (last decline)                      -> DECLINED (step, reason, detail);
//   - dropped for no answer in the first step      -> NOT_CONNECTED if it never fetched the
//                                                     item, else NO_ANSWER;
//   - dropped otherwise                            -> DROPPED (step, reason, detail);
//   - otherwise, in a running session              -> PENDING (current step; detail: "answered
//                                                     this step", "computing its contribution",
//                                                     "has not fetched the work yet", "has not
//                                                     answered this step yet");
//   - otherwise (the session ended without a sum)  -> NO_SUM.
std::vector<v1::SiteAnswer> SiteAnswersOf(const SessionFacts& facts);

// Records `attempt` in `attempts`: replaces the entry of the same session (keeping a site's
// DECLINED answer over a later DROPPED one at the same step: a resumed session knows the
// drop but no longer the decline), or appends it and drops the oldest entries beyond
// kMaxAttemptsKept.
void KeepAttempt(const v1::StageAttempt& attempt,
                 google::protobuf::RepeatedPtrField<v1::StageAttempt>* attempts);

// One site's answer in words: "hospital-c declined POLICY_REFUSED: <detail>", "hospital-b
// was dropped at masked_input: SECAGG_DROP_NO_ANSWER", "hospital-a was not connected (never
// fetched the work)", "hospital-a did not answer in time", "hospital-a contributed".
std::string DescribeAnswer(const v1::SiteAnswer& answer);

// Why the sessions of a stage gave no sum, from the last one that ended: each site that did
// not contribute, described ("; "-joined), then the session's outcome. Sites that failed the
// same way in every ended session are marked "(every attempt)". Empty if no session ended.
std::string FailureCause(const google::protobuf::RepeatedPtrField<v1::StageAttempt>& attempts);

// The wait for a cohort in words: "waiting for 3 sites holding dataset X (have 2); known but
// not connected: hospital-c; quarantined: hospital-d (...)". With no known site holding the
// dataset, says so and names the datasets the known sites do announce (`known_datasets`), to
// catch a misspelt id. `quarantined` and `disabled`: holders an operator's decision keeps
// out (each says how to let it back in).
v1::TaskWaiting MakeWaiting(const std::string& dataset_id, uint32_t needed, uint32_t have,
                            const std::vector<std::string>& not_connected, size_t contributed,
                            size_t excluded, const std::set<std::string>& known_datasets,
                            const std::vector<std::string>& quarantined = {},
                            const std::vector<std::string>& disabled = {});

// Whether two waits say the same (ignores since_unix_ms).
bool SameWaiting(const v1::TaskWaiting& a, const v1::TaskWaiting& b);

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SITE_ANSWERS_H_
