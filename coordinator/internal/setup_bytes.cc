#include "coordinator/internal/setup_bytes.h"

#include <utility>

#include "proto/transfer.h"

namespace tessera::coordinator::internal {

SetupBytes SharedSetupBytes(const v1::WorkItem& first,
                            const std::shared_ptr<const std::string>& model,
                            const std::shared_ptr<const ModelDeltaBytes>& model_delta) {
  v1::WorkItem fields = first;  // a few kilobytes when the model is apart
  fields.clear_work_id();
  fields.clear_task_id();
  fields.clear_round();
  fields.clear_stage();
  fields.clear_cohort_size();
  fields.clear_deadline_unix_ms();
  fields.clear_secagg();
  fields.clear_secagg_session();
  fields.clear_crl_pem();
  SetupBytes out;
  std::string inline_model;  // the model's field, when it goes inside `shared`
  if (model != nullptr) {
    fields.clear_model();
    if (model->size() > proto::kModelChunkBytes) {
      out.model = model;  // shared, not copied
      fields.set_model_size(model->size());
    } else {
      AppendMessageField(v1::WorkItem::kModelFieldNumber, *model, &inline_model);
    }
  } else if (fields.model().ByteSizeLong() > proto::kModelChunkBytes) {
    out.model = std::make_shared<const std::string>(fields.model().SerializeAsString());
    fields.clear_model();
    fields.set_model_size(out.model->size());
  }
  out.shared = std::make_shared<const std::string>(fields.SerializeAsString() + inline_model);
  if (model_delta != nullptr) {
    // The same fields with the delta in the model's place; its data apart above one chunk.
    auto variant = std::make_shared<ModelDeltaVariant>();
    variant->base_hash = model_delta->base_hash;
    fields.clear_model();
    fields.clear_model_size();
    v1::ModelDelta& delta = *fields.mutable_model_delta();
    delta.set_base_hash(model_delta->base_hash);
    if (model_delta->data->size() > proto::kModelChunkBytes) {
      variant->data = model_delta->data;  // shared, not copied
      delta.set_data_size(variant->data->size());
    } else {
      delta.set_data(*model_delta->data);
    }
    variant->shared = std::make_shared<const std::string>(fields.SerializeAsString());
    out.delta = std::move(variant);
  }
  return out;
}

}  // namespace tessera::coordinator::internal
