// Fuzz target: the coordinator's RocksDB store (coordinator/rocksdb_store.cc) reading
// records it did not write. Each input is a list of raw records (raw_store.h) written into
// a copy of a fresh store; the store is then opened and everything it holds is read back
// the way a restarted coordinator does (tasks, their rounds, checkpoints and round in
// flight, the client registry, pooled statistics). A damaged record is an error naming it
// (DATA_LOSS), never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "coordinator/store.h"
#include "proto/state.pb.h"
#include "tests/fuzz/raw_store.h"

namespace {

using namespace tessera;

const std::string& Template() {
  static const std::string* const dir = [] {
    auto* path = new std::string(fuzz::ScratchDir() + "/template");
    if (!coordinator::OpenRocksDbStore(*path).ok()) std::abort();
    return path;
  }();
  return *dir;
}

void ReadEverything(coordinator::Store& store, const std::vector<fuzz::RawRecord>& records) {
  if (auto tasks = store.ListTasks(); tasks.ok()) {
    for (const v1::TaskRecord& task : *tasks) {
      (void)store.GetTask(task.task_id());
      (void)store.GetInFlight(task.task_id());
      auto rounds = store.ListRounds(task.task_id());
      if (!rounds.ok()) continue;
      for (const v1::RoundRecord& round : *rounds)
        (void)store.GetCheckpoint(task.task_id(), round.round());
    }
  }
  if (auto clients = store.ListClients(); clients.ok()) {
    for (const v1::ClientRecord& client : *clients) (void)store.GetClient(client.client_id());
  }
  for (const fuzz::RawRecord& record : records) {
    if (record.family == "inflight") (void)store.GetInFlight(record.key);
    if (record.family == "clients") (void)store.GetClient(record.key);
    if (record.family != "statistics") continue;
    std::vector<std::string> parts = absl::StrSplit(record.key, '\0');
    if (parts.size() < 3) continue;
    const std::string dataset = parts.front();
    parts.erase(parts.begin());
    parts.pop_back();  // the key ends with a NUL
    (void)store.GetStatistics(dataset, parts);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> families = fuzz::Families(Template());
  const std::string work = fuzz::ScratchDir() + "/work";
  fuzz::FuzzInput in(data, size);
  const std::vector<fuzz::RawRecord> records = fuzz::ReadRecords(in, families);
  fuzz::CopyStore(Template(), work);
  if (!fuzz::WriteRecords(work, records).ok()) std::abort();
  auto store = coordinator::OpenRocksDbStore(work);
  if (store.ok()) ReadEverything(**store, records);
  return 0;
}
