// Coordinator::ExportModel: the committed model as a file, with its provenance record signed
// by the coordinator's certificate key (model_export/provenance.h says what is signed and
// why the coordinator builds the file itself).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/version.h"
#include "coordinator/coordinator.h"
#include "crypto/hash.h"
#include "crypto/pki.h"
#include "model_export/exported_model.h"
#include "model_export/provenance.h"

namespace tessera::coordinator {

absl::StatusOr<v1::ExportModelResponse> Coordinator::ExportModel(
    const v1::ExportModelRequest& request) {
  ASSIGN_OR_RETURN(model_export::Format format, model_export::ParseFormat(request.format()));
  ASSIGN_OR_RETURN(v1::TaskRecord task, store_->GetTask(request.task_id()));
  if (task.spec().has_analytics()) {
    return absl::FailedPreconditionError(
        absl::StrCat(task.task_id(), " is an analytics task: it has no model"));
  }
  if (options_.signer == nullptr || options_.certificate_pem.empty()) {
    return absl::FailedPreconditionError(
        "this coordinator has no signing key: it cannot sign a provenance record");
  }
  uint32_t round = request.round();
  if (round == 0) {
    if (task.last_committed_round() < 1) {
      return absl::FailedPreconditionError(
          absl::StrCat(task.task_id(), " has no committed training round yet"));
    }
    // With a validation split, the round it selected (the tested model) once there is one.
    round = task.selected_round() > 0 ? task.selected_round()
                                      : static_cast<uint32_t>(task.last_committed_round());
  }
  ASSIGN_OR_RETURN(std::vector<v1::RoundRecord> rounds, store_->ListRounds(task.task_id()));
  const v1::RoundRecord* exported = nullptr;
  for (const v1::RoundRecord& r : rounds) {
    if (r.round() == round) exported = &r;
  }
  if (exported == nullptr) {
    return absl::NotFoundError(absl::StrCat(task.task_id(), " has no committed round ", round));
  }
  ASSIGN_OR_RETURN(std::vector<float> params, store_->GetCheckpoint(task.task_id(), round));
  const std::string model_hash = crypto::HashModel(params);
  if (model_hash != exported->model_hash()) {
    return absl::InternalError(absl::StrCat("the stored checkpoint of ", task.task_id(), " round ",
                                            round, " does not match its hash"));
  }
  ASSIGN_OR_RETURN(v1::ExportedModel model,
                   model_export::BuildExportedModel(task.spec(), task.standardization(), params,
                                                    {task.task_id(), round}));
  ASSIGN_OR_RETURN(std::string file, model_export::WriteModelFile(model, format));
  ASSIGN_OR_RETURN(crypto::CertificateInfo me, crypto::ParseCertificate(options_.certificate_pem));

  model_export::ProvenanceInput input;
  input.task = &task;
  input.rounds = rounds;
  input.round = round;
  input.model_hash = model_hash;
  input.format = format;
  input.file = file;
  input.code_version = std::string(common::Version());
  input.coordinator_id = me.node_id;
  input.now_unix_ms = common::ToUnixMillis(clock_->Now());
  ASSIGN_OR_RETURN(v1::ModelProvenanceBody body, model_export::BuildProvenanceBody(input));
  v1::ExportModelResponse response;
  ASSIGN_OR_RETURN(
      *response.mutable_provenance(),
      model_export::SignProvenance(std::move(body), *options_.signer, options_.certificate_pem));
  response.mutable_checkpoint()->mutable_values()->Add(params.begin(), params.end());
  response.set_round(round);
  response.set_file(std::move(file));
  return response;
}

}  // namespace tessera::coordinator
