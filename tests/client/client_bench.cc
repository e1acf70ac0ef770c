// Throughput of the local data path: CSV parsing (bytes/s), logistic-regression SGD and
// the Fashion-MNIST MLP (items/s = training examples/s through full training steps:
// forward, backward and optimiser update). Run a Release build, one thread:
//   ./tests/client/client_bench --benchmark_counters_tabular=true
// The Fashion-MNIST benchmarks need `apt-get install dataset-fashion-mnist` (they report
// an error otherwise).
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "benchmark/benchmark.h"
#include "client/csv.h"
#include "client/dataset.h"
#include "client/idx.h"
#include "client/internal/random.h"
#include "client/model.h"
#include "client/site_store.h"
#include "client/trainer.h"
#include "crypto/hash.h"
#include "proto/site_state.pb.h"

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

// The official Fashion-MNIST split, standardised per pixel with the training images'
// statistics (population std, 1 for a constant pixel), loaded once.
struct FashionMnist {
  Dataset train, test;
};

const absl::StatusOr<FashionMnist>& LoadFashionMnist() {
  static const absl::StatusOr<FashionMnist>* const data = [] {
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    absl::StatusOr<Dataset> train =
        LoadIdxDataset(dir + "train-images-idx3-ubyte.gz", dir + "train-labels-idx1-ubyte.gz");
    absl::StatusOr<Dataset> test =
        LoadIdxDataset(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz");
    if (!train.ok()) return new absl::StatusOr<FashionMnist>(train.status());
    if (!test.ok()) return new absl::StatusOr<FashionMnist>(test.status());
    const LocalStatistics stats = ComputeStatistics(*train);
    const double n = static_cast<double>(stats.num_rows);
    std::vector<double> mean(train->num_features), stddev(train->num_features);
    for (size_t j = 0; j < train->num_features; ++j) {
      mean[j] = stats.sums[j] / n;
      const double var = stats.sums_of_squares[j] / n - mean[j] * mean[j];
      stddev[j] = var > 0 ? std::sqrt(var) : 1.0;
    }
    if (!Standardize(mean, stddev, &*train).ok() || !Standardize(mean, stddev, &*test).ok()) {
      return new absl::StatusOr<FashionMnist>(absl::InternalError("standardize"));
    }
    return new absl::StatusOr<FashionMnist>(FashionMnist{*std::move(train), *std::move(test)});
  }();
  return *data;
}

// One epoch (60,000 rows) of a 784-128-10 MLP, batch 32, on one thread; range(0) picks
// the optimiser (0 SGD, 1 momentum, 2 Adam). Each iteration continues from the last
// one's parameters; test_accuracy is on the 10,000 test images after the last epoch.
void BM_TrainMlpFashionMnist(benchmark::State& state) {
  Eigen::setNbThreads(1);
  const absl::StatusOr<FashionMnist>& fashion = LoadFashionMnist();
  if (!fashion.ok()) {
    state.SkipWithError(std::string(fashion.status().message()).c_str());
    return;
  }
  const Dataset* data = &fashion->train;
  const uint32_t hidden[] = {128};
  auto model = MakeMlp(784, hidden, 10);
  std::vector<float> params(model->num_parameters());
  model->Initialize(0, params);
  TrainingOptions options;
  options.epochs = 1;
  options.batch_size = 32;
  options.optimizer = static_cast<Optimizer>(state.range(0));
  options.learning_rate = options.optimizer == Optimizer::kAdam ? 1e-3 : 0.01;
  double loss = 0;
  for (auto _ : state) {
    absl::StatusOr<TrainingReport> report = Train(*model, *data, options, params);
    if (!report.ok()) {
      state.SkipWithError(std::string(report.status().message()).c_str());
      return;
    }
    loss = report->final_epoch_loss;
    benchmark::DoNotOptimize(params.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * data->num_rows));
  state.counters["epoch_loss"] = loss;
  const EvaluationSums test = model->Evaluate(params, fashion->test);
  state.counters["test_accuracy"] =
      static_cast<double>(test.num_correct) / static_cast<double>(test.num_examples);
  state.SetLabel(state.range(0) == 0 ? "SGD" : state.range(0) == 1 ? "momentum" : "Adam");
}
BENCHMARK(BM_TrainMlpFashionMnist)->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(2);

// The model's share of a step: LossAndGradient on 32 rows, without shuffling or update.
void BM_MlpLossAndGradient(benchmark::State& state) {
  Eigen::setNbThreads(1);
  const absl::StatusOr<FashionMnist>& fashion = LoadFashionMnist();
  if (!fashion.ok()) {
    state.SkipWithError(std::string(fashion.status().message()).c_str());
    return;
  }
  const Dataset* data = &fashion->train;
  const uint32_t hidden[] = {128};
  auto model = MakeMlp(784, hidden, 10);
  std::vector<float> params(model->num_parameters());
  model->Initialize(0, params);
  std::vector<double> grad(params.size());
  std::vector<size_t> rows(32);
  size_t next = 0;
  for (auto _ : state) {
    for (size_t& r : rows) r = (next++ * 7919) % data->num_rows;
    std::fill(grad.begin(), grad.end(), 0.0);
    benchmark::DoNotOptimize(model->LossAndGradient(params, *data, rows, 0, grad));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows.size()));
}
BENCHMARK(BM_MlpLossAndGradient)->Unit(benchmark::kMicrosecond);

// The site store's cost per secure-aggregation step: every answer is written, synced,
// before it leaves (client/secure_sessions.h). Arg: the vector's words (31: the demo's
// logistic regression; 101770: the Fashion-MNIST MLP). One iteration = one session of five
// steps: four records with the machine's snapshot (the input, the keys, the shares: about
// 4 bytes a word plus ~1 KB) and the answers so far (the masked input: 4 bytes a word), then
// the end of the session, which drops the snapshot and scrubs it from the files.
void BM_SiteStoreSession(benchmark::State& state) {
  const size_t words = static_cast<size_t>(state.range(0));
  char dir_template[] = "/tmp/tessera-site-store-bench-XXXXXX";
  const std::string dir = std::string(::mkdtemp(dir_template)) + "/store";
  auto store = OpenSiteStore(dir);
  if (!store.ok()) {
    state.SkipWithError(std::string(store.status().message()).c_str());
    return;
  }
  const std::string snapshot(words * 4 + 1024, 's');
  const std::string masked(words * 4, 'm');
  int64_t session = 0;
  for (auto _ : state) {
    const std::string label = "task-1/r" + std::to_string(++session) + "/fit/a1";
    const std::string key = crypto::Sha256(label);
    v1::SiteSessionRecord record;
    record.set_session(label);
    record.set_contribution_key(key);
    record.set_state(v1::SITE_SESSION_OPEN);
    for (uint32_t step = 1; step <= 4; ++step) {
      record.set_machine(snapshot);
      v1::StepAnswer* answer = record.add_answers();
      answer->set_step(step);
      answer->set_request_sha256(std::string(32, 'r'));
      if (step == 3)
        answer->mutable_answer()->mutable_secagg()->mutable_masked_input()->set_masked_input(
            masked);
      v1::ContributionRecord contribution;
      contribution.set_key(key);
      contribution.set_session(label);
      const absl::Status st = (*store)->PutSession(record, step == 3 ? &contribution : nullptr);
      if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    }
    record.clear_machine();
    record.set_state(v1::SITE_SESSION_COMPLETED);
    record.add_answers()->set_step(5);
    const absl::Status st = (*store)->PutSession(record, nullptr);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  store->reset();
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}
BENCHMARK(BM_SiteStoreSession)->Arg(31)->Arg(101770)->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
}  // namespace tessera::client

BENCHMARK_MAIN();
