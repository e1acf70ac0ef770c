#include "tests/research/research_util.h"

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/proto_text.h"
#include "common/status.h"

namespace tessera::research {

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(TESSERA_SOURCE_DIR, "/", relative);
}

std::string ExamplePath(const std::string& name) {
  return SourcePath(absl::StrCat("deploy/examples/", name, ".textproto"));
}

absl::StatusOr<v1::TaskSpec> LoadExample(const std::string& name) {
  v1::TaskSpec spec;
  RETURN_IF_ERROR(common::LoadProtoFile(ExamplePath(name), &spec));
  return spec;
}

std::string DataPath(const std::string& dataset) {
  return SourcePath(absl::StrCat("deploy/data/", dataset, ".csv"));
}

std::string TestRowsPath(const std::string& dataset) {
  return SourcePath(absl::StrCat("deploy/data/splits/", dataset, ".test_rows.txt"));
}

absl::StatusOr<simulation::SimulationResult> Simulate(const v1::TaskSpec& spec,
                                                      const std::string& dataset, uint32_t sites,
                                                      const std::string& partition,
                                                      const std::string& work_dir,
                                                      bool reference_split) {
  simulation::SimulationOptions options;
  options.spec = spec;
  options.data_csv = DataPath(dataset);
  options.num_sites = sites;
  ASSIGN_OR_RETURN(options.partition, simulation::ParsePartition(partition));
  if (reference_split) options.test_rows_file = TestRowsPath(dataset);
  options.work_dir = absl::StrCat(work_dir, "/", spec.name());
  return simulation::RunSimulation(options);
}

std::map<std::string, double> Metrics(const v1::RoundRecord& round) {
  std::map<std::string, double> out;
  for (const v1::Metric& m : round.metrics()) out[m.name()] = m.value();
  return out;
}

void Report(const std::string& what, const simulation::SimulationResult& result) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : result.final_metrics) {
    parts.push_back(absl::StrFormat("%s=%.4f", name, value));
  }
  std::printf("[research] %s: %s, %d rounds, %.2f s: %s\n", what.c_str(),
              v1::TaskState_Name(result.task.state()).c_str(), result.task.last_committed_round(),
              result.wall_seconds, absl::StrJoin(parts, " ").c_str());
  std::fflush(stdout);
}

}  // namespace tessera::research
