// Simulation for research: a whole federation in one process, on one local CSV file, so a
// researcher can try a task before any institution joins. It runs the real code paths:
// the coordinator core (task runner, secure-aggregation server, strategies, store) and, per
// simulated site, the real site agent (work processor, local training, secure-aggregation
// client) with its own certificate from a throwaway federation CA. Only the network is
// left out: sites call the coordinator in process instead of over gRPC.
//
// The file's rows are split into test rows (from a file of 0-based row indices, or a seeded
// 80/20 split) and training rows; the training rows are partitioned over the sites (IID,
// Dirichlet label skew, or one site per value of a column) and the test rows dealt round
// robin, so every site evaluates on its share of them. Everything is seeded from the task's
// seed: the same command gives the same split (and, without differential privacy, the same
// model).
//
// This library sits above both the coordinator and the client libraries, which otherwise
// never depend on each other.
#ifndef TESSERA_SIMULATION_SIMULATION_H_
#define TESSERA_SIMULATION_SIMULATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/model_provenance.pb.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "simulation/partition.h"

namespace tessera::simulation {

struct SimulationOptions {
  v1::TaskSpec spec;
  // The CSV with every row (header row, numbers only).
  std::string data_csv;
  // Instead of data_csv: a directory of MNIST-style IDX files (train-images-idx3-ubyte.gz,
  // train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), e.g.
  // Debian's /usr/share/datasets/fashion-mnist. Columns px0..pxN-1 and label; the t10k
  // images are the test rows (the official split; test_rows_file must be empty).
  std::string idx_dir;
  // Number of sites; with kByColumn 0 means "one per value".
  uint32_t num_sites = 0;
  Partition partition;
  // A file of 0-based data-row indices that are the test rows; empty for a seeded 80/20
  // split.
  std::string test_rows_file;
  // Where the sites' CSV files and the throwaway PKI go (created; must be writable).
  std::string work_dir;
  // Called with every round once its record is final (for progress output): when the next
  // round commits (which brings its evaluation) or the task ends.
  std::function<void(const v1::RoundRecord&)> on_round;
  // "onnx", "json" or "csv": also export the last committed round's (with a validation
  // split, the selected round's) model (as
  // `tessera models export` would) into SimulationResult.export_*. Empty: no export. The
  // in-process coordinator gets its own certificate (role coordinator) from the
  // simulation's throw-away CA and signs the provenance record with it, so the record
  // verifies with that CA's certificate (SimulationResult.ca_cert_pem) only.
  std::string export_format;
  // Keep every committed round's model (SimulationResult.checkpoints).
  bool keep_checkpoints = false;
};

struct SimulationResult {
  v1::TaskRecord task;
  std::vector<v1::RoundRecord> rounds;
  // The last round's evaluation metrics (or an analytics task's answer); with a validation
  // split the selected round's test metrics (task.selected_round, task.test_metrics).
  std::map<std::string, double> final_metrics;
  // Training rows per site (those it trains on: without its validation rows), in site
  // order; its validation rows (TrainingSpec.validation_fraction; 0 without a split) and
  // its test rows. A site's files are <work_dir>/site-NN/train.csv (training and validation
  // rows, in the order of the data file) and test.csv.
  std::vector<size_t> site_train_rows;
  std::vector<size_t> site_validation_rows;
  std::vector<size_t> site_test_rows;
  // With SimulationOptions.keep_checkpoints: the model of every committed round, by round
  // (0: the initial model).
  std::vector<std::vector<float>> checkpoints;
  double wall_seconds = 0;
  // With SimulationOptions.export_format, for a task that committed a training round: the
  // file's bytes and its signed provenance record; and the throw-away CA's certificate.
  std::string export_file;
  v1::ModelProvenance export_provenance;
  std::string ca_cert_pem;
};

// Runs the task to its end. INVALID_ARGUMENT for a bad spec (naming the field) or a column
// the file does not have (naming the field and the file); the task's own failure is
// reported in result.task.state.
absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options);

}  // namespace tessera::simulation

#endif  // TESSERA_SIMULATION_SIMULATION_H_
