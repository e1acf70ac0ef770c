// What this site contributes to a stage: the real vector of proto/contribution_layout.h
// (which SecureSessions then masks), or a reasoned decline. The whole local decision lives here,
// apart from any transport:
//   1. the item is intact: the spec and model hashes match their contents, sizes agree;
//   2. the local policy accepts the task and the cohort asked (client/policy.h: a refusal is
//      POLICY_REFUSED with a text naming the rule);
//   3. the site holds the dataset and its columns match the task's schema;
// only then are the local rows read and the stage computed. The statistics stage checks the
// training and held-out rows as the model will (shape and labels): a site that could not
// train or evaluate declines DATA_ERROR there, so it is not counted in the pooled statistics
// (the coordinator then invites only the counted sites to train: coordinator/task_runner.h).
// Nothing computed here is logged; logs carry ids, counts and sizes only.
//
// Loaded CSV files are cached (keyed by path, size and modification time), so rounds do
// not re-read them. Not thread-safe: one processor per client daemon loop.
#ifndef TESSERA_CLIENT_WORK_PROCESSOR_H_
#define TESSERA_CLIENT_WORK_PROCESSOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/model.h"
#include "proto/config.pb.h"
#include "proto/evaluation.h"
#include "proto/federation.pb.h"

namespace tessera::client {

struct WorkOutcome {
  // Set when the site contributes.
  std::optional<std::vector<double>> contribution;
  // Set (reason != REASON_UNSPECIFIED) when the site declines.
  v1::Decline decline;
};

class WorkProcessor {
 public:
  // `client_id` is this site's certificate name (it seeds local shuffling). `config` must be
  // validated, with defaults applied.
  WorkProcessor(std::string client_id, v1::ClientConfig config);

  // Loads every configured CSV once, so that a misconfigured site fails at start with an
  // error naming the file rather than at its first round.
  absl::Status Preload();

  WorkOutcome Process(const v1::WorkItem& item);

  // The approval queue's say (client/approvals.h), asked once the item is intact and the
  // policy does not refuse it, before any local data is read: nullopt to go on, or the
  // decline to send. Unset (the simulator): the processor alone decides.
  using ApprovalGate =
      std::function<std::optional<v1::Decline>(const v1::WorkItem&, const v1::LocalPolicy&)>;
  void SetApprovalGate(ApprovalGate gate) { approval_gate_ = std::move(gate); }

  // Replaces the local policy (a reload): items processed afterwards are checked against it.
  void SetPolicy(const v1::LocalPolicy& policy) { *config_.mutable_policy() = policy; }

  // Seed of this site's local shuffling for a round: SHA-256 of (task seed, round, client id).
  static uint64_t LocalSeed(uint64_t task_seed, uint32_t round, const std::string& client_id);

 private:
  // Which rows of a dataset a stage reads: the training file's rows outside the task's
  // validation split (all of them without one), its rows inside it, or the test file's.
  enum class RowSet { kTraining, kValidation, kTest };
  static const std::string& PathOf(const v1::LocalDataset& local, RowSet rows);

  // The dataset's `rows`, selected by the task's schema, not standardised.
  // INVALID_ARGUMENT/NOT_FOUND naming the file on a mismatch. With the schema's preparation
  // (client/prepare.h) applied first; `pooled` as PrepareTable takes it (null in round 0),
  // and `imputation_counts` (optional) gets its counts.
  absl::StatusOr<std::shared_ptr<const Dataset>> LoadRows(
      const v1::LocalDataset& local, RowSet rows, const v1::TaskSpec& spec,
      const v1::Standardization* pooled, std::vector<double>* imputation_counts = nullptr);
  // The table of `rows` (the task's validation split applied), prepared as the schema says
  // (the file's own table when it splits and prepares nothing). INVALID_ARGUMENT when the
  // split leaves the site no training or no validation row.
  absl::StatusOr<std::shared_ptr<const CsvTable>> LoadPrepared(
      const v1::LocalDataset& local, RowSet rows, const v1::TaskSpec& spec,
      const v1::Standardization* pooled, std::vector<double>* imputation_counts);
  absl::StatusOr<std::shared_ptr<const CsvTable>> LoadTable(const std::string& path);

  // The stages' computations, after the common checks.
  WorkOutcome Statistics(const v1::WorkItem& item, const v1::LocalDataset& local);
  WorkOutcome Fit(const v1::WorkItem& item, const Model& model, const Dataset& data,
                  const std::vector<float>& global);
  // One Newton round of an exact regression (client/glm_work.h) on the training rows, at
  // the item's coefficients.
  WorkOutcome Glm(const v1::WorkItem& item, const v1::LocalDataset& local);
  WorkOutcome Evaluate(const v1::WorkItem& item, const Model& model, const Dataset& data,
                       const std::vector<float>& params);
  // One session per round (STAGE_FIT_EVALUATE): the EVALUATE vector of `params` on the
  // held-out rows (zeros without them; the validation rows with a split) appended to the FIT
  // vector trained from `params`.
  // Declined BAD_WORK_ITEM when the task noises its evaluations: a noised evaluation is a
  // release of its own, so it is asked for in sessions of its own.
  WorkOutcome FitEvaluate(const v1::WorkItem& item, const Model& model,
                          const v1::LocalDataset& local, const std::vector<float>& params);
  // The item's dataset's `rows`, standardised with the item's statistics and checked as
  // `model` reads them, into `*out`; else the decline.
  std::optional<WorkOutcome> PrepareRows(const v1::WorkItem& item, const v1::LocalDataset& local,
                                         const Model& model, RowSet rows, Dataset* out);
  // The rows an evaluation of `item` reads: the validation rows for EVALUATE and
  // FIT_EVALUATE in a task with a validation split, else (and for TEST) the test rows.
  static RowSet EvaluationRows(const v1::WorkItem& item);
  // An evaluation of `params` on `rows` (EmptyEvaluation when they are the test rows and
  // the site has no test file).
  WorkOutcome EvaluateRows(const v1::WorkItem& item, const Model& model,
                           const v1::LocalDataset& local, RowSet rows,
                           const std::vector<float>& params);
  // The EVALUATE vector of a site without held-out rows: zeros (with its share of the
  // evaluation noise when the task asks for it), so the cohort's sums stay sums over the
  // same sites.
  WorkOutcome EmptyEvaluation(const v1::WorkItem& item);
  // Every row the site holds for the dataset (training and held-out files): exact cells
  // with small ones withheld, or, when the task has privacy, nothing withheld and this
  // site's share of the noise on every statistic (client/privacy.h).
  WorkOutcome Analytics(const v1::WorkItem& item, const v1::LocalDataset& local);
  // An evaluation vector with this site's share of the evaluation noise when the task asks
  // for it (privacy.evaluation_noise_multiplier > 0), as is otherwise.
  WorkOutcome NoisedEvaluation(const v1::WorkItem& item, const proto::EvaluationLayout& layout,
                               std::vector<double> sums);

  const std::string client_id_;
  v1::ClientConfig config_;
  ApprovalGate approval_gate_;

  struct CachedTable {
    int64_t size = 0;
    int64_t mtime_ns = 0;
    std::shared_ptr<const CsvTable> table;
  };
  std::map<std::string, CachedTable> tables_;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_WORK_PROCESSOR_H_
