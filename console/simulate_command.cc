// `tessera simulate`: a whole federation in one process on a local CSV file
// (simulation/simulation.h), for researchers to try a task before any site joins.
//
// With --json, stdout carries exactly one JSON object (logs go to stderr):
//   {"task": NAME, "state": "TASK_COMPLETED" | ..., "reason": TEXT, "clients": N,
//    "partition": TEXT, "site_train_rows": [..], "site_test_rows": [..],
//    "rounds": [{"round": R, "sites": S, "metrics": {NAME: VALUE, ..}}, ..],
//    "final": {NAME: VALUE, ..}, "selected_round": R, "selection": TEXT,
//    "site_validation_rows": [..], "wall_seconds": SECONDS,
//    "coefficients": [{"name": TERM, "estimate": B, "std_error": SE, "statistic": Z,
//                      "p_value": P, "ci_low": LO, "ci_high": HI}, ..],
//    "warnings": [TEXT, ..],
//    "glm": {"family": F, "statistic": "z"|"t", "rows": N, "events": E, "deviance": D,
//            "null_deviance": D0, "aic": A, "dispersion": PHI, "df_residual": DF,
//            "log_likelihood": L, "iterations": I, "rounds": R, "converged": true|false}}
// "warnings" (simulation/diagnostics.h: client drift, small sites) is always there, maybe
// empty. "coefficients" and "glm" only for an exact regression (model.glm) that reported:
// R's summary on the pooled training rows, the intercept "(Intercept)", on the columns'
// own scale.
// A training task's "rounds" start with round 0 (the statistics round: num_train_rows);
// a query has one round. "final" holds the last evaluated round's metrics (accuracy, auc,
// log_loss, macro_f1, rmse, r2, c_index, ... as the model kind defines them,
// proto/evaluation.h), or an analytics task's answer. With a validation split
// (training.validation_fraction) the rounds' metrics are on the validation rows, "final"
// holds the test metrics of the round "selected_round" (0 without a split), "selection"
// says why it was selected, and "site_train_rows" counts the rows each site trains on
// ("site_validation_rows" those it holds out). Numbers have 17 significant digits
// (they read back exactly); a metric that is not a finite number (NaN: undefined for the
// cohort) is null.
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/flags.h"
#include "common/proto_text.h"
#include "common/status.h"
#include "console/console.h"
#include "console/internal.h"
#include "console/task_tables.h"
#include "proto/glm_layout.h"
#include "proto/validation.h"
#include "simulation/diagnostics.h"
#include "simulation/simulation.h"

namespace tessera::console {
namespace {

// A JSON number that reads back as the same double (17 significant digits), or null for
// NaN and infinities (a metric the cohort cannot define, e.g. AUC without positives),
// which JSON has no number for.
std::string Json(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.17g", v);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

std::string MetricsJson(const google::protobuf::RepeatedPtrField<v1::Metric>& metrics) {
  std::vector<std::string> parts;
  for (const v1::Metric& m : metrics) {
    parts.push_back(absl::StrCat(JsonString(m.name()), ": ", Json(m.value())));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

// ",\n \"coefficients\": [..],\n \"glm\": {..}" for an exact regression's report.
std::string GlmJson(const v1::GlmReport& r) {
  std::vector<std::string> coefficients;
  for (const v1::GlmCoefficient& c : r.coefficients()) {
    coefficients.push_back(absl::StrCat(
        "{\"name\": ", JsonString(c.name()), ", \"estimate\": ", Json(c.estimate()),
        ", \"std_error\": ", Json(c.std_error()), ", \"statistic\": ", Json(c.statistic()),
        ", \"p_value\": ", Json(c.p_value()), ", \"ci_low\": ", Json(c.ci_low()),
        ", \"ci_high\": ", Json(c.ci_high()), "}"));
  }
  return absl::StrCat(
      ",\n \"coefficients\": [", absl::StrJoin(coefficients, ",\n  "), "],\n \"glm\": {",
      "\"family\": ", JsonString(r.family()), ", \"statistic\": ", JsonString(r.statistic()),
      ", \"rows\": ", r.rows(), ", \"events\": ", r.events(),
      ", \"deviance\": ", Json(r.deviance()), ", \"null_deviance\": ", Json(r.null_deviance()),
      ", \"aic\": ", Json(r.aic()), ", \"dispersion\": ", Json(r.dispersion()),
      ", \"df_residual\": ", r.df_residual(), ", \"log_likelihood\": ", Json(r.log_likelihood()),
      ", \"iterations\": ", r.iterations(), ", \"rounds\": ", r.rounds(),
      ", \"converged\": ", r.converged() ? "true" : "false", "}");
}

// Prints each round as a table row as the simulation reports it. The columns are the first
// round's metrics; a metric a later round adds (an exact regression's null deviance)
// follows as NAME=VALUE.
class RoundTable {
 public:
  void Print(const v1::RoundRecord& r) {
    if (r.round() == 0) return;
    if (header_.empty()) {
      header_ = {"ROUND", "SITES"};
      for (const v1::Metric& m : r.metrics()) header_.push_back(m.name());
    }
    std::vector<std::string> cells = {absl::StrCat(r.round()),
                                      absl::StrCat(r.fit_participants_size())};
    for (size_t i = 2; i < header_.size(); ++i) {
      std::string cell = "-";
      for (const v1::Metric& m : r.metrics()) {
        if (m.name() == header_[i]) cell = absl::StrFormat("%.4f", m.value());
      }
      cells.push_back(cell);
    }
    std::vector<std::string> extra;
    for (const v1::Metric& m : r.metrics()) {
      if (std::find(header_.begin() + 2, header_.end(), m.name()) == header_.end()) {
        extra.push_back(absl::StrFormat("%s=%.4f", m.name(), m.value()));
      }
    }
    if (!extra.empty()) cells.push_back(absl::StrJoin(extra, " "));
    if (widths_.empty()) {
      for (const std::string& h : header_) widths_.push_back(std::max<size_t>(h.size(), 8));
      PrintLine(header_);
    }
    PrintLine(cells);
    std::fflush(stdout);
  }

 private:
  void PrintLine(const std::vector<std::string>& cells) const {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += absl::StrFormat("%-*s  ", i < widths_.size() ? widths_[i] : 8, cells[i]);
    }
    std::printf("%s\n", line.c_str());
  }

  std::vector<std::string> header_;
  std::vector<size_t> widths_;
};

// The one JSON object of --json (this file's comment).
void PrintJson(const simulation::SimulationResult& result, const std::string& partition_text,
               const std::vector<std::string>& warnings) {
  const v1::TaskRecord& task = result.task;
  std::vector<std::string> quoted_warnings;
  quoted_warnings.reserve(warnings.size());
  for (const std::string& w : warnings) quoted_warnings.push_back(JsonString(w));
  std::vector<std::string> rounds;
  for (const v1::RoundRecord& r : result.rounds) {
    rounds.push_back(absl::StrCat("{\"round\": ", r.round(),
                                  ", \"sites\": ", r.fit_participants_size(),
                                  ", \"metrics\": ", MetricsJson(r.metrics()), "}"));
  }
  std::vector<std::string> final_parts;
  for (const auto& [name, value] : result.final_metrics) {
    final_parts.push_back(absl::StrCat(JsonString(name), ": ", Json(value)));
  }
  std::printf(
      "{\"task\": %s, \"state\": %s, \"reason\": %s, \"clients\": %zu, \"partition\": %s,\n"
      " \"site_train_rows\": [%s], \"site_validation_rows\": [%s], \"site_test_rows\": [%s],\n"
      " \"rounds\": [%s],\n \"final\": {%s},\n \"selected_round\": %u, \"selection\": %s,\n"
      " \"wall_seconds\": %s,\n \"warnings\": [%s]%s}\n",
      JsonString(task.spec().name()).c_str(), JsonString(v1::TaskState_Name(task.state())).c_str(),
      JsonString(task.state_reason()).c_str(), result.site_train_rows.size(),
      JsonString(partition_text).c_str(), absl::StrJoin(result.site_train_rows, ", ").c_str(),
      absl::StrJoin(result.site_validation_rows, ", ").c_str(),
      absl::StrJoin(result.site_test_rows, ", ").c_str(), absl::StrJoin(rounds, ",\n  ").c_str(),
      absl::StrJoin(final_parts, ", ").c_str(), task.selected_round(),
      JsonString(task.selection()).c_str(), Json(result.wall_seconds).c_str(),
      absl::StrJoin(quoted_warnings, ", ").c_str(),
      task.has_glm_report() ? GlmJson(task.glm_report()).c_str() : "");
}

// The outcome as text after the round table.
void PrintText(const simulation::SimulationResult& result, const std::string& partition_text,
               const std::vector<std::string>& warnings) {
  const v1::TaskRecord& task = result.task;
  std::printf("%s %s after %d rounds in %.1f s (%zu sites, %s)\n", task.spec().name().c_str(),
              v1::TaskState_Name(task.state()).c_str(), task.last_committed_round(),
              result.wall_seconds, result.site_train_rows.size(), partition_text.c_str());
  if (task.selected_round() > 0) {
    std::printf("selected round %u: %s\n", task.selected_round(), task.selection().c_str());
  }
  for (const auto& [name, value] : result.final_metrics) {
    std::printf("final %s=%.4f%s\n", name.c_str(), value,
                task.selected_round() > 0 ? " (test rows)" : "");
  }
  if (task.has_glm_report()) internal::PrintGlmReport(task.glm_report());
  for (const std::string& w : warnings) std::printf("warning: %s\n", w.c_str());
}

// The command line as the simulation's options; nullopt after --help.
struct SimulateArgs {
  simulation::SimulationOptions options;
  std::string task_file;
  std::string partition_text = "iid";
  std::string export_path;
  bool json = false;
};

absl::StatusOr<std::optional<SimulateArgs>> ParseSimulateArgs(
    const std::vector<std::string>& args) {
  SimulateArgs parsed;
  uint64_t clients = 0;
  uint64_t max_sites = 50;
  std::string test_rows;
  std::string work_dir;
  std::string idx_dir;
  common::FlagParser flags(
      "tessera simulate TASK_FILE --clients N [--partition P] [--test-rows ROWS] [--json] "
      "DATA.csv | --idx DIR",
      "Runs TASK_FILE over DATA.csv split among N simulated sites, in one process, with the\n"
      "real coordinator and site code (secure aggregation included; only the network is left\n"
      "out). Training rows are partitioned over the sites; test rows (from --test-rows, 0-based\n"
      "data-row indices, or a seeded 80/20 split) are dealt to them round robin, so each site\n"
      "evaluates on its share. Prints each round's federated metrics and the final ones.");
  flags.AddUint("clients", &clients,
                "number of simulated sites (by-column, by-quantile: 0 = as the partition makes)");
  flags.AddString("partition", &parsed.partition_text,
                  "iid, round-robin, dirichlet:ALPHA, by-column:NAME or by-quantile:NAME:K");
  flags.AddUint("max-sites", &max_sites,
                "by-column: refuse a column with more distinct values than this (default 50)");
  flags.AddString("test-rows", &test_rows, "file of 0-based test-row indices");
  flags.AddString("work-dir", &work_dir, "where the sites' files go (default: a temporary dir)");
  flags.AddString("idx", &idx_dir,
                  "instead of DATA.csv: an MNIST-style IDX directory (e.g. "
                  "/usr/share/datasets/fashion-mnist), official train/test split");
  flags.AddBool("json", &parsed.json, "print one JSON object instead of tables");
  flags.AddString("export", &parsed.export_path,
                  "write the final model to FILE.onnx|.json|.csv with FILE.provenance (signed "
                  "by the simulation's throw-away CA, whose certificate goes to "
                  "FILE.simulation-ca.pem)");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 2));
  if (!go) return std::nullopt;
  if (positional.size() != (idx_dir.empty() ? 2u : 1u)) {
    return absl::InvalidArgumentError(
        "simulate needs TASK_FILE and either DATA.csv or --idx DIR (see --help)");
  }
  parsed.task_file = positional[0];
  simulation::SimulationOptions& options = parsed.options;
  common::TextLocations where;
  RETURN_IF_ERROR(common::LoadProtoFile(parsed.task_file, &options.spec, &where));
  RETURN_IF_ERROR(
      common::FieldErrorsToStatus(proto::ValidateTaskSpec(options.spec), parsed.task_file, &where));
  if (idx_dir.empty()) options.data_csv = positional[1];
  options.idx_dir = idx_dir;
  ASSIGN_OR_RETURN(options.partition, simulation::ParsePartition(parsed.partition_text));
  if (max_sites == 0 || max_sites > 1000) {
    return absl::InvalidArgumentError("--max-sites: from 1 to 1000 sites");
  }
  options.partition.max_sites = static_cast<uint32_t>(max_sites);
  if (clients == 0 && options.partition.kind != simulation::Partition::Kind::kByColumn &&
      options.partition.kind != simulation::Partition::Kind::kByQuantile) {
    return absl::InvalidArgumentError("--clients N is required (N >= 1)");
  }
  if (clients > 1000) return absl::InvalidArgumentError("--clients: at most 1000 sites");
  options.num_sites = static_cast<uint32_t>(clients);
  options.test_rows_file = test_rows;
  options.work_dir = work_dir;
  if (!parsed.export_path.empty()) {
    if (proto::IsGlmTask(options.spec)) {
      return absl::InvalidArgumentError(
          "--export: an exact regression's result is its report (the coefficients with their "
          "standard errors: --json, or the table printed), not a model to export");
    }
    ASSIGN_OR_RETURN(options.export_format, internal::ExportFormatOfPath(parsed.export_path));
  }
  return parsed;
}

}  // namespace

absl::Status SimulateCommand(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(std::optional<SimulateArgs> parsed, ParseSimulateArgs(args));
  if (!parsed) return absl::OkStatus();
  simulation::SimulationOptions& options = parsed->options;
  std::string temp;
  if (options.work_dir.empty()) {
    char pattern[] = "/tmp/tessera-simulate-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return absl::InternalError("cannot make a temporary dir");
    temp = pattern;
    options.work_dir = temp;
  }
  RoundTable table;
  if (!parsed->json) options.on_round = [&table](const v1::RoundRecord& r) { table.Print(r); };
  absl::StatusOr<simulation::SimulationResult> result = simulation::RunSimulation(options);
  if (!temp.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp, ec);
  }
  if (!result.ok()) return common::Annotate(result.status(), parsed->task_file);
  const v1::TaskRecord& task = result->task;
  std::vector<std::string> warnings = simulation::DriftWarnings(task.spec(), result->rounds);
  for (std::string& w : simulation::SmallSiteWarnings(task.spec(), result->site_train_rows)) {
    warnings.push_back(std::move(w));
  }
  if (parsed->json) {
    PrintJson(*result, parsed->partition_text, warnings);
  } else {
    PrintText(*result, parsed->partition_text, warnings);
  }
  if (!parsed->export_path.empty()) {
    RETURN_IF_ERROR(internal::WriteSimulationExport(
        parsed->export_path, result->export_file, result->export_provenance, result->ca_cert_pem));
  }
  if (task.state() == v1::TASK_FAILED || task.state() == v1::TASK_CANCELLED) {
    return absl::AbortedError(absl::StrCat(
        task.spec().name(), " ", v1::TaskState_Name(task.state()), ": ", task.state_reason()));
  }
  return absl::OkStatus();
}

}  // namespace tessera::console
