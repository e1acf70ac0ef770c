// Shared set-up of the research tests and benchmark: the example task files users get
// (deploy/examples), the shipped datasets and their reference splits (deploy/data), and
// RunSimulation over them in a temporary directory.
#ifndef TESSERA_TESTS_RESEARCH_RESEARCH_UTIL_H_
#define TESSERA_TESTS_RESEARCH_RESEARCH_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/state.pb.h"
#include "proto/task.pb.h"
#include "simulation/simulation.h"

namespace tessera::research {

// TESSERA_SOURCE_DIR + "/" + relative.
std::string SourcePath(const std::string& relative);

// deploy/examples/<name>.textproto, as `tessera simulate` loads it.
std::string ExamplePath(const std::string& name);
absl::StatusOr<v1::TaskSpec> LoadExample(const std::string& name);

// deploy/data/<dataset>.csv and deploy/data/splits/<dataset>.test_rows.txt.
std::string DataPath(const std::string& dataset);
std::string TestRowsPath(const std::string& dataset);

// RunSimulation of `spec` over deploy/data/<dataset>.csv, `sites` sites, partition
// `partition` ("iid", "dirichlet:0.3", ...), test rows from the reference split when
// `reference_split` (else the seeded 80/20 split), in a fresh directory under `work_dir`.
absl::StatusOr<simulation::SimulationResult> Simulate(const v1::TaskSpec& spec,
                                                      const std::string& dataset, uint32_t sites,
                                                      const std::string& partition,
                                                      const std::string& work_dir,
                                                      bool reference_split = true);

// A program run as a user runs it: `binary` with `args` (each shell-quoted), stdin empty,
// stderr into `err_path`; its stdout and exit code (-1 if a signal ended it).
struct CommandOutput {
  int exit_code = -1;
  std::string out;
};
CommandOutput RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& err_path);

// The metrics of a round record, by name.
std::map<std::string, double> Metrics(const v1::RoundRecord& round);

// One line on stdout with the task's final figures and wall time (kept in the test log).
void Report(const std::string& what, const simulation::SimulationResult& result);

}  // namespace tessera::research

#endif  // TESSERA_TESTS_RESEARCH_RESEARCH_UTIL_H_
