// The Fashion-MNIST federation of deploy/examples/fashion_mnist_mlp.textproto: MLP
// 784-128-10 over 10 simulated sites (IID shares of the 60,000 official training images;
// the 10,000 test images dealt round robin), through RunSimulation with the real
// coordinator and site code, secure aggregation included. Reports the final test accuracy
// (the bar is 0.85), macro-F1, log-loss, the rounds and the wall time of the whole run
// (loading the IDX files, writing and reading the sites' files, every round), and the
// training throughput over the run (training examples x local epochs x rounds / wall).
// One iteration. Run a Release build:
//   ./tests/research/research_bench --benchmark_counters_tabular=true
// Needs `apt-get install dataset-fashion-mnist` (reports an error otherwise).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"

namespace tessera::research {
namespace {

constexpr char kFashionMnist[] = "/usr/share/datasets/fashion-mnist";

void BM_FashionMnistFederation(benchmark::State& state) {
  const uint32_t sites = static_cast<uint32_t>(state.range(0));
  if (!std::filesystem::exists(absl::StrCat(kFashionMnist, "/train-images-idx3-ubyte.gz"))) {
    state.SkipWithError("install dataset-fashion-mnist (apt-get install dataset-fashion-mnist)");
    return;
  }
  absl::StatusOr<v1::TaskSpec> spec = LoadExample("fashion_mnist_mlp");
  if (!spec.ok()) {
    state.SkipWithError(std::string(spec.status().message()).c_str());
    return;
  }
  const std::filesystem::path work =
      std::filesystem::temp_directory_path() / absl::StrCat("research-bench-", ::getpid());
  simulation::SimulationResult last;
  for (auto _ : state) {
    simulation::SimulationOptions options;
    options.spec = *spec;
    options.idx_dir = kFashionMnist;
    options.num_sites = sites;
    options.work_dir = work.string();
    absl::StatusOr<simulation::SimulationResult> result = simulation::RunSimulation(options);
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      return;
    }
    if (result->task.state() != v1::TASK_COMPLETED) {
      state.SkipWithError(result->task.state_reason().c_str());
      return;
    }
    last = *std::move(result);
  }
  const double rounds = last.task.last_committed_round();
  state.counters["accuracy"] = last.final_metrics["accuracy"];
  state.counters["macro_f1"] = last.final_metrics["macro_f1"];
  state.counters["log_loss"] = last.final_metrics["log_loss"];
  state.counters["rounds"] = rounds;
  state.counters["wall_s"] = last.wall_seconds;
  state.counters["train_samples_per_s"] = last.final_metrics["train_examples"] *
                                          spec->training().local_epochs() * rounds /
                                          last.wall_seconds;
  state.counters["reaches_0.85"] = last.final_metrics["accuracy"] >= 0.85 ? 1 : 0;
  state.SetLabel(absl::StrCat(sites, " sites, MLP 784-128-10"));
  Report(absl::StrCat("fashion_mnist_mlp (", sites, " sites)"), last);
}
BENCHMARK(BM_FashionMnistFederation)
    ->Arg(10)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace
}  // namespace tessera::research

BENCHMARK_MAIN();
