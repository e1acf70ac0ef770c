// Backup and restore of a coordinator store with large models (coordinator/store_backup.h):
// throughput of the checkpoint + stream + checked write, and of the checked restore. The
// store holds one task with `rounds` committed rounds of a `params`-parameter model (the
// checkpoints dominate a real store). Figures: docs/operations.md section 7.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "coordinator/store.h"
#include "coordinator/store_backup.h"
#include "proto/state.pb.h"
#include "tests/coordinator/store_testing.h"
#include "tests/testing/temp_dir.h"

namespace tessera::coordinator {
namespace {

std::unique_ptr<Store> Populate(const std::string& dir, int rounds, size_t params) {
  auto store = OpenRocksDbStore(dir);
  if (!store.ok()) std::abort();
  v1::TaskRecord task = store_testing::MakeTask("big");
  task.set_task_id(*(*store)->CreateTask(task));
  std::vector<float> model(params);
  uint64_t x = 0x9e3779b97f4a7c15ULL;  // trained weights do not compress: random ones
  for (int r = 1; r <= rounds; ++r) {
    for (float& w : model) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      w = static_cast<float>(static_cast<int64_t>(x >> 40) - (1 << 23)) / (1 << 23);
    }
    task.set_last_committed_round(r);
    if (!(*store)->CommitRound(task, store_testing::MakeRound(task.task_id(), r), model).ok()) {
      std::abort();
    }
  }
  return std::move(*store);
}

void BM_BackupAndRestore(benchmark::State& state) {
  const int rounds = static_cast<int>(state.range(0));
  const size_t params = static_cast<size_t>(state.range(1));
  testing::TempDir dir;
  std::unique_ptr<Store> store = Populate(dir.File("data"), rounds, params);
  int n = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const std::string backup = dir.File(absl::StrCat("backup-", n));
    const std::string restored = dir.File(absl::StrCat("restored-", n++));
    auto writer = BackupWriter::Create(backup);
    absl::Status added;
    const absl::Time t0 = absl::Now();
    absl::Status st = StreamStoreBackup(*store, BackupStagingDir(dir.File("data")), absl::Now(),
                                        [&](const v1::BackupStoreChunk& chunk) {
                                          added = (*writer)->Add(chunk);
                                          return added.ok();
                                        });
    const absl::Time t1 = absl::Now();
    if (!st.ok() || !added.ok()) state.SkipWithError("backup failed");
    auto summary = RestoreStoreBackup(backup, restored);
    const absl::Time t2 = absl::Now();
    if (!summary.ok()) state.SkipWithError("restore failed");
    bytes = (*writer)->bytes();
    state.counters["backup_ms"] = absl::ToDoubleMilliseconds(t1 - t0);
    state.counters["restore_ms"] = absl::ToDoubleMilliseconds(t2 - t1);
  }
  state.counters["store_MB"] = static_cast<double>(bytes) / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}
// 30 rounds of a 31-parameter model (the demo), of 10^5 and of 10^6 parameters.
BENCHMARK(BM_BackupAndRestore)
    ->Args({30, 31})
    ->Args({30, 100000})
    ->Args({30, 1000000})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
}  // namespace tessera::coordinator

BENCHMARK_MAIN();
