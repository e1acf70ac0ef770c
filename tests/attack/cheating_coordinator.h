// A coordinator under the attacker's control, driving the real site code of an
// AttackFederation. It runs stages the way tessera-coordinator does — one
// secure-aggregation session of five steps, the real SecAggServer judging the answers — but
// the test chooses everything a cheating operator could: the cohort, the attempt, the task
// id, the threshold, the encoding, N, and any change to the first work item of any one site.
// What it gets back is everything such a coordinator learns: the unmasked sum (if the session
// completes), the survivors, and every decline with its reason and detail.
#ifndef TESSERA_TESTS_ATTACK_CHEATING_COORDINATOR_H_
#define TESSERA_TESTS_ATTACK_CHEATING_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/federation.pb.h"
#include "proto/secagg.pb.h"
#include "proto/task.pb.h"
#include "tests/attack/attack_federation.h"

namespace tessera::attack {

struct StagePlan {
  std::string task_id = "task-1";
  uint32_t round = 1;
  v1::Stage stage = v1::STAGE_FIT;
  uint32_t attempt = 1;
  // The invited sites (sorted here).
  std::vector<std::string> cohort;
  // 0: the threshold the real coordinator would propose for the cohort.
  uint32_t threshold = 0;
  // The task spec (defaults applied); the first item carries it with its hash.
  v1::TaskSpec spec;
  // FIT and EVALUATE: the global model and the pooled standardisation (N included).
  std::vector<float> model;
  v1::Standardization standardization;
  // Unset: the encoding the real coordinator uses for the stage and cohort.
  std::optional<v1::SecAggEncoding> encoding;
  // Called on each site's first work item before it is sent: a coordinator that tells one
  // site something else (another spec, model, N).
  std::function<void(const std::string& site, v1::WorkItem& item)> tamper_first_item;
};

struct StageOutcome {
  bool completed = false;
  // The decoded sum over the survivors and the raw summed words (when completed).
  std::vector<double> sums;
  std::vector<uint32_t> words;
  std::vector<std::string> survivors;
  // Every decline a site sent, by site (its first one in the session).
  std::map<std::string, v1::Decline> declines;
  // The server's abort reason, when it did not complete.
  std::string abort;
};

// The first work item the real coordinator would send `site` for `plan` (without the
// secure-aggregation message): spec, hashes, model, standardisation, l2, cohort size.
v1::WorkItem FirstItem(const StagePlan& plan);

// The encoding the real coordinator uses for `plan`'s stage and cohort.
v1::SecAggEncoding DefaultEncoding(const StagePlan& plan);

// The threshold the real coordinator proposes for `n` invited sites.
uint32_t DefaultThreshold(uint32_t n);

// The set-up the real coordinator would open `plan`'s session with (a fresh nonce).
v1::SecAggSetup SetupFor(const StagePlan& plan);

// The work item of `step` carrying `message` (the first step's carries FirstItem too).
v1::WorkItem StepItem(const StagePlan& plan, int step, const v1::SecAggServerMessage& message);

// Only the first step: what `site` answers to `plan`'s set-up (an advertisement of keys or a
// decline). The session is not continued.
v1::PushResultRequest AskFirstStep(AttackFederation& federation, const StagePlan& plan,
                                   const std::string& site);

// Runs one session of `plan` over the federation's real sites to its end.
StageOutcome RunStage(AttackFederation& federation, const StagePlan& plan);

// The largest |a_i - b_i| (infinity if the sizes differ or either is empty).
double MaxAbsDifference(const std::vector<double>& a, const std::vector<double>& b);

// a - b, element by element (sizes must match).
std::vector<double> Difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace tessera::attack

#endif  // TESSERA_TESTS_ATTACK_CHEATING_COORDINATOR_H_
