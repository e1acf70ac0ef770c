// The bytes a secure session's first step shares between every site's item
// (coordinator/secure_stage.cc RunSteps; work_board.h PostedItem). Pure functions.
#ifndef TESSERA_COORDINATOR_INTERNAL_SETUP_BYTES_H_
#define TESSERA_COORDINATOR_INTERNAL_SETUP_BYTES_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "coordinator/internal/model_bytes.h"  // SerializedModel
#include "coordinator/internal/wire_fields.h"  // AppendVarint, AppendMessageField
#include "coordinator/work_board.h"
#include "proto/federation.pb.h"

namespace tessera::coordinator::internal {

// What every site's first item carries alike (spec, model, their hashes, standardisation,
// l2), as WorkItem wire bytes without any field the step sets per site (PostedItem::shared);
// a model above proto::kModelChunkBytes serialized goes apart (PostedItem::model), the
// item naming its size.
struct SetupBytes {
  std::shared_ptr<const std::string> shared;
  std::shared_ptr<const std::string> model;  // null: the model is in `shared`
  // The same with the model as a delta (null: none); its `shared` as `shared` above.
  std::shared_ptr<ModelDeltaVariant> delta;
};

// `model`, if not null, is the first item's model as serialized v1::ModelParameters kept
// apart from `first` (SerializedModel): shared, never copied, as PostedItem::model when it
// goes apart, else written into `shared`. Otherwise first.model, if any, is the model.
SetupBytes SharedSetupBytes(const v1::WorkItem& first,
                            const std::shared_ptr<const std::string>& model,
                            const std::shared_ptr<const ModelDeltaBytes>& model_delta);

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_SETUP_BYTES_H_
