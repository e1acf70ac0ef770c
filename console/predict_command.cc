// `tessera predict MODEL DATA.csv [--out FILE]`: scores a CSV locally with a model written
// by `tessera models export` (onnx or json; model_export/scorer.h), without any network.
// The CSV must have the model's feature columns (by header name, any order, other columns
// ignored). Output: a CSV with one row per data row, the model's output columns (e.g.
// `probability`, `p_0..p_K-1`, `prediction`, `linear_predictor`) and, for classifiers,
// `predicted` (binary: 1 when probability >= 0.5, the client models' rule; multiclass: the
// most probable class, the lowest among ties). When the CSV also has the model's label
// column, a summary line goes to stderr: `rows=N accuracy=A` (classifiers) or
// `rows=N rmse=R` (regression).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/csv.h"
#include "common/files.h"
#include "common/flags.h"
#include "common/status.h"
#include "console/console.h"
#include "console/internal.h"
#include "model_export/scorer.h"

namespace tessera::console {
namespace {

int ColumnOf(const client::CsvTable& table, const std::string& name) {
  for (size_t c = 0; c < table.header.size(); ++c) {
    if (table.header[c] == name) return static_cast<int>(c);
  }
  return -1;
}

// The predicted class of one row of outputs, or -1 for a model that is not a classifier.
int Predicted(const std::string& kind, const double* row, size_t width) {
  if (kind == "LOGISTIC_REGRESSION") return row[0] >= 0.5 ? 1 : 0;
  if (width < 2) return -1;
  size_t best = 0;
  for (size_t j = 1; j < width; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return static_cast<int>(best);
}

}  // namespace

absl::Status PredictCommand(const std::vector<std::string>& args) {
  std::string out;
  common::FlagParser flags(
      "tessera predict [flags] MODEL DATA.csv",
      "Scores the rows of DATA.csv with MODEL (an .onnx or .json file from tessera models\n"
      "export) on this machine, no network. Writes a CSV of the model's outputs (and the\n"
      "predicted class of a classifier); with the label column present, prints the accuracy\n"
      "or RMSE on stderr.");
  flags.AddString("out", &out, "write the predictions here (default: stdout)");
  std::vector<std::string> positional;
  ASSIGN_OR_RETURN(bool go, internal::ParseFlags(flags, args, &positional, 2));
  if (!go) return absl::OkStatus();
  if (positional.size() != 2) {
    return absl::InvalidArgumentError("predict needs a MODEL file and a DATA.csv file");
  }
  ASSIGN_OR_RETURN(std::string model_bytes, common::ReadFile(positional[0]));
  ASSIGN_OR_RETURN(auto scorer, model_export::Scorer::Load(model_bytes, positional[0]));
  ASSIGN_OR_RETURN(client::CsvTable table, client::LoadCsv(positional[1]));
  const size_t width = table.header.size();
  const size_t f = scorer->features().size();
  std::vector<int> columns;
  for (const std::string& name : scorer->features()) {
    const int c = ColumnOf(table, name);
    if (c < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(positional[1], ": column '", name, "' of the model is not in the file"));
    }
    columns.push_back(c);
  }
  std::vector<double> x(table.num_rows * f);
  for (size_t r = 0; r < table.num_rows; ++r) {
    for (size_t j = 0; j < f; ++j) x[r * f + j] = table.values[r * width + columns[j]];
  }
  ASSIGN_OR_RETURN(std::vector<double> y, scorer->Score(x, table.num_rows));
  const size_t k = scorer->output_columns().size();
  const bool classifier = Predicted(scorer->kind(), y.data(), k) >= 0;
  std::string text = absl::StrJoin(scorer->output_columns(), ",");
  if (classifier) text += ",predicted";
  text += "\n";
  const int label = scorer->label().empty() ? -1 : ColumnOf(table, scorer->label());
  size_t correct = 0;
  double squared = 0;
  for (size_t r = 0; r < table.num_rows; ++r) {
    const double* row = y.data() + r * k;
    for (size_t j = 0; j < k; ++j) absl::StrAppendFormat(&text, "%s%.17g", j ? "," : "", row[j]);
    if (classifier) {
      const int p = Predicted(scorer->kind(), row, k);
      absl::StrAppend(&text, ",", p);
      if (label >= 0 && table.values[r * width + label] == p) ++correct;
    } else if (label >= 0 && k == 1) {
      const double e = row[0] - table.values[r * width + label];
      squared += e * e;
    }
    text += "\n";
  }
  if (out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    RETURN_IF_ERROR(common::WriteFileAtomic(out, text));
  }
  const bool regression =
      scorer->kind() == "LINEAR_REGRESSION" || (scorer->kind() == "MLP" && !classifier);
  if (label >= 0 && table.num_rows > 0 && classifier) {
    std::fprintf(stderr, "rows=%zu accuracy=%.17g\n", table.num_rows,
                 static_cast<double>(correct) / static_cast<double>(table.num_rows));
  } else if (label >= 0 && table.num_rows > 0 && regression) {
    std::fprintf(stderr, "rows=%zu rmse=%.17g\n", table.num_rows,
                 std::sqrt(squared / static_cast<double>(table.num_rows)));
  }
  return absl::OkStatus();
}

}  // namespace tessera::console
