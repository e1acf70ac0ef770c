// Fuzz target: a secure-aggregation client (secagg/client.h) fed arbitrary server
// messages. The first byte picks the state the client starts from — site-00 of the fixed
// session (secagg_world.h) restored after Start (0), after each later answer (1..3), or
// completed (4) — then every 2-byte-length chunk that parses as a SecAggServerMessage is
// handed to Handle, in order. Whatever arrives, the client must answer or abort with a
// reason, never crash; an aborted client stays aborted with its first reason, and every
// state's snapshot restores.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "secagg/client.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/secagg_world.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const fuzz::SecAggWorld& world = fuzz::World();
  fuzz::FuzzInput in(data, size);
  const int start = in.Byte() % fuzz::kClientSnapshots;
  auto client = secagg::SecAggClient::Restore(world.Identity(), secagg::ClientPolicy(),
                                              world.client_snapshots[start]);
  if (!client.ok()) std::abort();  // the fixed snapshots restore
  while (!in.empty()) {
    v1::SecAggServerMessage message;
    const std::string_view bytes = in.Chunk16();
    if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) continue;
    const bool was_aborted = (*client)->state() == secagg::ClientState::kAborted;
    const v1::SecAggClientAbort reason = (*client)->abort_reason();
    auto reply = (*client)->Handle(message);
    if (was_aborted && (reply.ok() || (*client)->abort_reason() != reason)) std::abort();
    if (!reply.ok() && (*client)->state() == secagg::ClientState::kAborted &&
        (*client)->abort_reason() == v1::SECAGG_CLIENT_ABORT_UNSPECIFIED) {
      std::abort();  // an abort without a reason
    }
  }
  auto restored = secagg::SecAggClient::Restore(world.Identity(), secagg::ClientPolicy(),
                                                (*client)->Snapshot());
  if (!restored.ok() || (*restored)->state() != (*client)->state()) std::abort();
  return 0;
}
