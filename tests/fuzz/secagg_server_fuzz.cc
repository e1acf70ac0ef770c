// Fuzz target: a secure-aggregation server (secagg/server.h) fed arbitrary client
// messages. The first byte picks the step boundary the server starts from (the fixed
// session of secagg_world.h restored after Create (0) or after each CloseRound (1..4));
// then each operation byte is
//   0x00..0x7f: Receive from client (byte % 4) the SecAggClientMessage in the following
//               2-byte-length chunk (skipped if it does not parse);
//   0x80..0xbf: CloseRound;
//   0xc0..0xff: Drop client (byte % 4).
// After each CloseRound the server's outgoing messages, snapshot and provenance are taken
// (as the round driver does), unless nothing happened since the last such check (no
// message or drop, the same step and state: a CloseRound of an ended session). The server
// must refuse or drop, never crash; a snapshot it gives must restore.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "secagg/server.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/secagg_world.h"

namespace {

using tessera::secagg::SecAggServer;
using tessera::secagg::ServerState;

void AtBoundary(const SecAggServer& server, const tessera::fuzz::SecAggWorld& world) {
  (void)server.Outgoing();
  (void)server.Pending();
  (void)server.Provenance();
  auto snapshot = server.Snapshot();
  if (snapshot.ok()) {
    auto restored = SecAggServer::Restore(*snapshot, world.ServerOptions());
    if (!restored.ok()) {  // a snapshot the server gave does not restore
      std::fprintf(stderr, "restore at step %d: %s\n", static_cast<int>(server.round()),
                   restored.status().ToString().c_str());
      std::abort();
    }
  }
  if (server.state() == ServerState::kCompleted &&
      server.sum().size() != world.server_snapshots[0].setup().vector_words()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  const fuzz::SecAggWorld& world = fuzz::World();
  fuzz::FuzzInput in(data, size);
  const int start = in.Byte() % fuzz::kServerSnapshots;
  auto server = SecAggServer::Restore(world.server_snapshots[start], world.ServerOptions());
  if (!server.ok()) std::abort();  // the fixed snapshots restore
  bool acted = true;               // a message or a drop since the last check
  std::pair<ServerState, int> checked_at{ServerState::kCollecting, -1};
  while (!in.empty()) {
    const uint8_t op = in.Byte();
    const std::string& client = world.ids[op % fuzz::kWorldSites];
    if (op < 0x80) {
      v1::SecAggClientMessage message;
      const std::string_view bytes = in.Chunk16();
      if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) continue;
      (void)(*server)->Receive(client, message);
      acted = true;
    } else if (op < 0xc0) {
      (*server)->CloseRound();
      const std::pair<ServerState, int> now{(*server)->state(),
                                            static_cast<int>((*server)->round())};
      if (acted || now != checked_at) AtBoundary(**server, world);
      acted = false;
      checked_at = now;
    } else {
      (*server)->Drop(client, v1::SECAGG_DROP_NO_ANSWER, "fuzz");
      acted = true;
    }
  }
  return 0;
}
