// Private to client/: what a work item needs from the coordinator before the site can
// answer it, fetched by the daemon (daemon.cc) after it pulls the item: the model when it
// travels apart (client/model_download.h), a model delta's data and the model it makes
// from the one this site holds (HeldModels), and the peers' certificates its
// advertisement list names but the site does not hold (client/peer_certificates.h).
// Every request leaves through the RecordedCaller, recorded in the egress ledger first; each
// carries only what the coordinator sent (a work id, an offset, certificate digests),
// nothing of the site's.
//
// Thread safety: none; the daemon's one loop thread (as RecordedCaller).
#ifndef TESSERA_CLIENT_INTERNAL_ITEM_DOWNLOADS_H_
#define TESSERA_CLIENT_INTERNAL_ITEM_DOWNLOADS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/internal/recorded_caller.h"
#include "client/model_download.h"
#include "client/monitoring.h"
#include "client/peer_certificates.h"
#include "proto/federation.pb.h"

namespace tessera::client::internal {

// A transport error that may pass (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, ABORTED):
// the daemon reconnects and is handed the item again.
bool IsTransient(const absl::Status& st);

class ItemDownloads {
 public:
  // `caller` and `meters` must outlive this object.
  ItemDownloads(RecordedCaller* caller, ClientMetrics* meters);

  // The site's own certificate, so that its own advertisement needs no fetch.
  void AddOwnCertificate(const std::string& pem) { certificates_.Add(pem); }

  // The hashes of the models last sent to this site, for its next PullWork: the next model
  // may come as a delta from one of them.
  void ListHeldModels(v1::PullWorkRequest* pull) const { held_models_.ListIn(pull); }

  // Makes `item` whole: its model from a delta or fetched apart, remembered for the next
  // delta, and its advertisement list's certificates. NOT_FOUND: the step closed meanwhile
  // (or the item is not this site's), nothing to answer. Another transport error is
  // returned as is, and so is UNAVAILABLE for a delta that did not add up (the task's held
  // model is then forgotten: handed again, the item carries the model whole); the daemon
  // reconnects on either. A model fetched apart that does not add up, or certificates the
  // coordinator refuses, are logged and left out: the work processor then declines the
  // item, naming what is missing.
  absl::Status Complete(v1::WorkItem* item);

 private:
  absl::Status ApplyModelDelta(v1::WorkItem* item);
  absl::Status FetchModelApart(v1::WorkItem* item);
  absl::Status CompleteCertificates(v1::WorkItem* item);
  // PullChunk calls for `item`'s model (or its delta's data), each call's transport status
  // left in `*transport` (which must outlive the result's use), so that a caller can tell
  // the transport's errors from the checks' on what arrived.
  FetchModelChunk Chunks(const v1::WorkItem& item, bool delta, absl::Status* transport);
  // One PullModelChunk call for `item`'s model (or with `delta`, its model delta's data)
  // from `offset`; its error is the transport's.
  absl::StatusOr<v1::PullModelChunkResponse> PullChunk(const v1::WorkItem& item, uint64_t offset,
                                                       bool delta);

  RecordedCaller* const caller_;
  ClientMetrics* const meters_;
  PeerCertificates certificates_;  // the peers' certificates seen, by SHA-256
  HeldModels held_models_;         // the last model sent for each task
};

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_ITEM_DOWNLOADS_H_
