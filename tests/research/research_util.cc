#include "tests/research/research_util.h"

#include <sys/wait.h>

#include <array>
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

CommandOutput RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::string& err_path) {
  auto quote = [](const std::string& s) { return absl::StrCat("'", s, "'"); };
  std::vector<std::string> quoted = {quote(binary)};
  for (const std::string& a : args) quoted.push_back(quote(a));
  const std::string command =
      absl::StrCat(absl::StrJoin(quoted, " "), " 2>", quote(err_path), " </dev/null");
  CommandOutput result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace tessera::research
