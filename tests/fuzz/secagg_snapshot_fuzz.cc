// Fuzz target: the restore paths of durable secure-aggregation sessions
// (secagg/client_snapshot.cc, secagg/server_snapshot.cc) on arbitrary bytes. The first
// byte picks a client snapshot (restored as site-00 of the fixed federation) or a server
// snapshot; the rest is the snapshot. A refused snapshot is DATA_LOSS (INTERNAL only for a
// failing random source); an accepted one must give a snapshot that restores again to the
// same state.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "secagg/client.h"
#include "secagg/server.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/secagg_world.h"

namespace {

void CheckRefusal(const absl::Status& status) {
  if (!absl::IsDataLoss(status) && !absl::IsInternal(status)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const fuzz::SecAggWorld& world = fuzz::World();
  fuzz::FuzzInput in(data, size);
  const bool server = in.Byte() % 2 == 1;
  std::string bytes(in.Rest());
  if (!server) {
    auto client = secagg::SecAggClient::Restore(world.Identity(), secagg::ClientPolicy(),
                                                crypto::SecretBytes(std::move(bytes)));
    if (!client.ok()) {
      CheckRefusal(client.status());
      return 0;
    }
    auto again = secagg::SecAggClient::Restore(world.Identity(), secagg::ClientPolicy(),
                                               (*client)->Snapshot());
    if (!again.ok() || (*again)->state() != (*client)->state()) std::abort();
    return 0;
  }
  v1::SecAggServerSnapshot snapshot;
  if (!snapshot.ParseFromString(bytes)) return 0;
  auto restored = secagg::SecAggServer::Restore(snapshot, world.ServerOptions());
  if (!restored.ok()) {
    CheckRefusal(restored.status());
    return 0;
  }
  (void)(*restored)->Outgoing();
  auto again = (*restored)->Snapshot();
  if (again.ok() && !secagg::SecAggServer::Restore(*again, world.ServerOptions()).ok()) {
    std::abort();
  }
  return 0;
}
