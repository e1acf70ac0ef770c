// Throughput of the local data path: CSV parsing (bytes/s) and logistic-regression SGD
// (items/s = training examples/s). Run a Release build:
//   ./tests/client/client_bench --benchmark_counters_tabular=true
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/internal/random.h"
#include "client/model.h"
#include "client/trainer.h"

namespace tessera::client {
namespace {

double Uniform(internal::SplitMix64& rng) {
  return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;
}

// `rows` x `columns` of either decimals like the breast-cancer file ("17.99", "0.1184")
// or integers 0..255 like image pixels, plus a 0/1 label column.
std::string SyntheticCsv(size_t rows, size_t columns, bool pixels) {
  internal::SplitMix64 rng(1);
  std::string text;
  for (size_t c = 0; c < columns; ++c) {
    // Appended piecewise: "f" + std::to_string(c) trips a GCC 12 -Wrestrict false positive.
    text += 'f';
    text += std::to_string(c);
    text += ',';
  }
  text += "label\n";
  char cell[32];
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns; ++c) {
      if (pixels) {
        std::snprintf(cell, sizeof(cell), "%d,", static_cast<int>(rng.Below(256)));
      } else {
        std::snprintf(cell, sizeof(cell), "%.4g,", Uniform(rng) * 2000);
      }
      text += cell;
    }
    text += rng.Below(2) ? "1\n" : "0\n";
  }
  return text;
}

void BM_ParseCsv(benchmark::State& state) {
  const bool pixels = state.range(0) == 1;
  const std::string text = pixels ? SyntheticCsv(5000, 784, true) : SyntheticCsv(50000, 30, false);
  for (auto _ : state) {
    absl::StatusOr<CsvTable> table = ParseCsv(text, "bench.csv");
    if (!table.ok()) state.SkipWithError(std::string(table.status().message()).c_str());
    benchmark::DoNotOptimize(table);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(pixels ? "5000x785 integers 0..255" : "50000x31 decimals");
}
BENCHMARK(BM_ParseCsv)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

Dataset RandomDataset(size_t rows, size_t features) {
  internal::SplitMix64 rng(2);
  Dataset data;
  data.num_rows = rows;
  data.num_features = features;
  data.x.resize(rows * features);
  for (double& v : data.x) v = 2 * Uniform(rng) - 1;
  data.y.resize(rows);
  for (double& v : data.y) v = static_cast<double>(rng.Below(2));
  return data;
}

// One epoch of SGD over 10,000 rows of 30 features; range(0) is the batch size.
void BM_SgdLogisticRegression(benchmark::State& state) {
  const Dataset data = RandomDataset(10000, 30);
  auto model = MakeLogisticRegression(30);
  std::vector<float> params(model->num_parameters(), 0.0f);
  TrainingOptions options;
  options.epochs = 1;
  options.batch_size = static_cast<uint32_t>(state.range(0));
  options.learning_rate = 0.05;
  options.l2 = 1e-4;
  for (auto _ : state) {
    absl::StatusOr<TrainingReport> report = TrainSgd(*model, data, options, params);
    if (!report.ok()) state.SkipWithError(std::string(report.status().message()).c_str());
    benchmark::DoNotOptimize(params.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * data.num_rows));
}
BENCHMARK(BM_SgdLogisticRegression)->Arg(1)->Arg(32)->Arg(256)->Unit(benchmark::kMillisecond);

void BM_EvaluateLogisticRegression(benchmark::State& state) {
  const Dataset data = RandomDataset(10000, 30);
  auto model = MakeLogisticRegression(30);
  std::vector<float> params(model->num_parameters(), 0.01f);
  for (auto _ : state) benchmark::DoNotOptimize(model->Evaluate(params, data));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * data.num_rows));
}
BENCHMARK(BM_EvaluateLogisticRegression)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tessera::client

BENCHMARK_MAIN();
