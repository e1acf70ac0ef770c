// Fetching a work item's model that travels apart from it (WorkItem.model_size > 0: a model
// above proto::kModelChunkBytes serialized, Federation.PullModelChunk): chunk by chunk from
// offset 0, every reply checked against what the item announced, then parsed into the item,
// whose model_hash the work processor checks next as it would an inline model's.
//
// A site never takes more than its task's model can be: the announced size must be at most
// proto::MaxSerializedModelBytes of the spec's parameter count, so a coordinator cannot make
// a site download (or hold) more than that.
//
// Thread-compatible: FetchModel is a pure function of its arguments.
#ifndef TESSERA_CLIENT_MODEL_DOWNLOAD_H_
#define TESSERA_CLIENT_MODEL_DOWNLOAD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/federation.pb.h"

namespace tessera::client {

// One PullModelChunk call for bytes from `offset`; its error is the transport's.
using FetchModelChunk = std::function<absl::StatusOr<v1::PullModelChunkResponse>(uint64_t offset)>;

// Puts the model `item` announces (model_size > 0, no inline model) into item->model and
// clears model_size. A `fetch` error is returned as is (nothing is changed: the daemon
// reconnects and is handed the item again). DATA_LOSS, naming what is wrong and changing
// nothing, when the coordinator's side does not add up: an announced size larger than the
// spec's model can take (or a spec whose model has no size), a reply whose total is not the
// announced size, an empty chunk or one past the end, bytes that do not parse as a model.
// FAILED_PRECONDITION if the item announces no model apart or also carries one inline.
absl::Status FetchModel(v1::WorkItem* item, const FetchModelChunk& fetch);

// The model a site was sent last for each task (at most proto::kMaxHeldModels tasks, the
// least recently sent forgotten first): the bases a coordinator may send the next model
// against (WorkItem.model_delta, proto/model_delta.h) to a site that lists them in its
// PullWorkRequest. In memory only: a restarted daemon holds none and is sent whole models.
//
// Thread-compatible.
class HeldModels {
 public:
  // Sets `request` to accept deltas against the models held.
  void ListIn(v1::PullWorkRequest* request) const;

  // `item`'s model (inline) becomes the one held for its task, under its model_hash as
  // sent: a model that does not hash to it is declined by the work processor, and a delta
  // against it then fails its own check. Nothing if the item carries no model or no hash,
  // or a model of another size than its spec gives.
  void Remember(const v1::WorkItem& item);

  // Holds nothing for `task_id` any more: its next model comes whole.
  void Forget(const std::string& task_id);

  // Puts the model `item`'s model_delta encodes into item->model and clears model_delta:
  // its data inline, or fetched by `fetch` (chunks of the delta's data) when it travels
  // apart. `fetch`'s error is returned as is. DATA_LOSS, naming what is wrong and changing
  // nothing, when the base is not the model held for the item's task, the data apart is
  // announced larger than the model, a chunk does not add up, the data does not decode
  // against the base, or the model it gives does not hash to the item's model_hash.
  absl::Status Apply(v1::WorkItem* item, const FetchModelChunk& fetch) const;

  size_t size() const { return by_task_.size(); }

 private:
  struct Held {
    std::string hash;
    std::vector<float> values;
    uint64_t sent = 0;  // order of Remember calls
  };
  std::map<std::string, Held> by_task_;
  uint64_t remembered_ = 0;
};

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_MODEL_DOWNLOAD_H_
