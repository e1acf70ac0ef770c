#include "client/prepare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "proto/federation.pb.h"
#include "proto/preparation.h"
#include "proto/task.pb.h"

namespace tessera::client {
namespace {

using Prep = v1::ColumnPreparation;

// One entry, resolved against the table.
struct Entry {
  const Prep* prep = nullptr;
  size_t column = 0;                   // in the raw table
  size_t first_output = 0;             // its first derived column in the output
  int imputed = -1;                    // its index among the IMPUTE_MEAN entries
  int mode = -1;                       // its index among the IMPUTE_MODE entries
  std::vector<double> numeric_levels;  // each level's value, NaN if it is no number
};

size_t LineOf(size_t row) { return row + 2; }  // the header is line 1

bool IsMissingText(const std::string& text) {
  const std::string t(absl::StripAsciiWhitespace(text));
  return t.empty() || absl::EqualsIgnoreCase(t, "NA") || absl::EqualsIgnoreCase(t, "NaN");
}

// Whether the raw cell (r, c) is missing; for a categorical entry, its level (-1: none).
struct Cell {
  bool missing = false;
  int level = -1;
  double value = 0;
};

Cell Read(const CsvTable& raw, const Entry& e, size_t row) {
  const size_t width = raw.header.size();
  const size_t index = row * width + e.column;
  Cell cell;
  cell.value = raw.values[index];
  const bool number = !std::isnan(cell.value);
  if (e.prep->levels_size() == 0) {
    cell.missing = !number;
    return cell;
  }
  if (number) {
    for (size_t i = 0; i < e.numeric_levels.size(); ++i) {
      if (e.numeric_levels[i] == cell.value) cell.level = static_cast<int>(i);
    }
    return cell;
  }
  auto text = raw.cell_text.find(index);
  const std::string cell_text = text == raw.cell_text.end() ? "" : text->second;
  if (IsMissingText(cell_text)) {
    cell.missing = true;
    return cell;
  }
  const std::string trimmed(absl::StripAsciiWhitespace(cell_text));
  for (int i = 0; i < e.prep->levels_size(); ++i) {
    if (e.prep->levels(i) == trimmed) cell.level = i;
  }
  return cell;
}

absl::StatusOr<double> Transform(const Entry& e, double v, size_t row, const std::string& source) {
  const Prep& p = *e.prep;
  auto domain = [&](const char* what) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": column '", p.column(), "' has a cell outside ",
        Prep::Transform_Name(p.transform()), "'s domain (", what, ") on line ", LineOf(row)));
  };
  switch (p.transform()) {
    case Prep::LOG:
      if (!(v > 0)) return domain("> 0");
      v = std::log(v);
      break;
    case Prep::LOG1P:
      if (!(v > -1)) return domain("> -1");
      v = std::log1p(v);
      break;
    case Prep::SQRT:
      if (!(v >= 0)) return domain(">= 0");
      v = std::sqrt(v);
      break;
    default:
      break;
  }
  if (p.clip_size() == 2) v = std::clamp(v, p.clip(0), p.clip(1));
  return v;
}

// Entries with `standardize`: (v - mean) / sd with the pooled values of their feature.
absl::Status StandardizeColumns(const v1::DatasetSpec& dataset, const v1::Standardization& pooled,
                                const std::vector<Entry>& entries, CsvTable* table) {
  const size_t width = table->header.size();
  for (const Entry& e : entries) {
    if (!e.prep->standardize()) continue;
    const auto it =
        std::find(dataset.features().begin(), dataset.features().end(), e.prep->column());
    const auto j = static_cast<int>(it - dataset.features().begin());
    if (it == dataset.features().end() || j >= pooled.mean_size() || j >= pooled.stddev_size() ||
        !(pooled.stddev(j) > 0)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the item has no pooled mean and standard deviation of feature '",
                       e.prep->column(), "' to standardise it"));
    }
    for (size_t row = 0; row < table->num_rows; ++row) {
      double& v = table->values[row * width + e.column];
      v = (v - pooled.mean(j)) / pooled.stddev(j);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PreparedTable> PrepareTable(const CsvTable& raw, const v1::DatasetSpec& dataset,
                                           const v1::Standardization* pooled,
                                           const std::string& source) {
  const size_t width = raw.header.size();
  const std::vector<const Prep*> mode_entries = proto::ImputedModeEntries(dataset);
  if (pooled != nullptr) {
    const size_t means = proto::ImputedMeanEntries(dataset).size();
    if (static_cast<size_t>(pooled->imputed_means_size()) != means ||
        static_cast<size_t>(pooled->imputed_modes_size()) != mode_entries.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the task imputes ", means, " columns with pooled means and ",
                       mode_entries.size(), " with pooled modes; the item carries ",
                       pooled->imputed_means_size(), " and ", pooled->imputed_modes_size()));
    }
    for (size_t k = 0; k < mode_entries.size(); ++k) {
      if (pooled->imputed_modes(static_cast<int>(k)) >=
          static_cast<uint32_t>(mode_entries[k]->levels_size())) {
        return absl::FailedPreconditionError(absl::StrCat("the item's mode of column '",
                                                          mode_entries[k]->column(),
                                                          "' is not one of its levels"));
      }
    }
  }
  PreparedTable out;
  out.table.header = raw.header;
  std::vector<Entry> entries;
  int imputed = 0;
  int modes = 0;
  for (const Prep& p : dataset.prepare()) {
    Entry e;
    e.prep = &p;
    const auto it = std::find(raw.header.begin(), raw.header.end(), p.column());
    if (it == raw.header.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": column '", p.column(), "' not found"));
    }
    e.column = static_cast<size_t>(it - raw.header.begin());
    e.first_output = out.table.header.size();
    for (int i = 1; i < p.levels_size(); ++i) {
      out.table.header.push_back(absl::StrCat(p.column(), "=", p.levels(i)));
    }
    if (p.missing() == Prep::INDICATOR) out.table.header.push_back(p.column() + ":missing");
    if (p.missing() == Prep::IMPUTE_MEAN) e.imputed = imputed++;
    if (p.missing() == Prep::IMPUTE_MODE) e.mode = modes++;
    for (const std::string& level : p.levels()) {
      double v = std::numeric_limits<double>::quiet_NaN();
      if (!absl::SimpleAtod(level, &v) || !std::isfinite(v)) {
        v = std::numeric_limits<double>::quiet_NaN();
      }
      e.numeric_levels.push_back(v);
    }
    entries.push_back(std::move(e));
  }
  // Present counts of IMPUTE_MEAN columns, then of each level of IMPUTE_MODE columns.
  std::vector<double> present(static_cast<size_t>(imputed), 0.0);
  std::vector<std::vector<double>> level_counts(mode_entries.size());
  for (size_t k = 0; k < mode_entries.size(); ++k) {
    level_counts[k].assign(static_cast<size_t>(mode_entries[k]->levels_size()), 0.0);
  }
  const size_t out_width = out.table.header.size();
  // Per output column: cells still not numbers (the raw ones, minus the prepared columns').
  out.table.non_numeric_cells.assign(out_width, 0);
  out.table.first_non_numeric_line.assign(out_width, 0);
  for (size_t c = 0; c < width && c < raw.non_numeric_cells.size(); ++c) {
    out.table.non_numeric_cells[c] = raw.non_numeric_cells[c];
    out.table.first_non_numeric_line[c] = raw.first_non_numeric_line[c];
  }
  std::vector<size_t> refused(entries.size(), 0);
  std::vector<size_t> refused_line(entries.size(), 0);
  for (const Entry& e : entries) {
    if (e.prep->levels_size() == 0) out.table.non_numeric_cells[e.column] = 0;
  }
  out.table.values.reserve(raw.num_rows * out_width);
  for (size_t row = 0; row < raw.num_rows; ++row) {
    bool dropped = false;
    for (const Entry& e : entries) {
      if (e.prep->missing() == Prep::DROP_ROW && Read(raw, e, row).missing) dropped = true;
    }
    if (dropped) continue;
    const size_t start = out.table.values.size();
    out.table.values.insert(out.table.values.end(), raw.values.begin() + row * width,
                            raw.values.begin() + (row + 1) * width);
    out.table.values.resize(start + out_width, 0.0);
    double* cells = out.table.values.data() + start;
    for (size_t k = 0; k < entries.size(); ++k) {
      const Entry& e = entries[k];
      const Prep& p = *e.prep;
      const Cell cell = Read(raw, e, row);
      const bool indicator = p.missing() == Prep::INDICATOR;
      if (cell.missing) {
        switch (p.missing()) {
          case Prep::IMPUTE_MEAN:
            cells[e.column] = pooled == nullptr ? 0.0 : pooled->imputed_means(e.imputed);
            break;
          case Prep::IMPUTE_MODE:
            if (pooled != nullptr) {
              const uint32_t level = pooled->imputed_modes(e.mode);
              if (level >= 1) cells[e.first_output + level - 1] = 1.0;
            }
            break;
          case Prep::IMPUTE_CONSTANT:
          case Prep::INDICATOR:
            if (p.levels_size() == 0) cells[e.column] = p.fill();
            break;
          default:  // MISSING_REFUSE (DROP_ROW rows are gone)
            if (refused[k]++ == 0) refused_line[k] = LineOf(row);
            break;
        }
      } else if (p.levels_size() > 0) {
        if (cell.level >= 0 && e.mode >= 0) {
          ++level_counts[static_cast<size_t>(e.mode)][static_cast<size_t>(cell.level)];
        }
        if (cell.level < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(source, ": column '", p.column(), "' has a cell that is not one of its ",
                           p.levels_size(), " declared levels on line ", LineOf(row)));
        }
        if (cell.level >= 1) cells[e.first_output + static_cast<size_t>(cell.level - 1)] = 1.0;
      } else {
        absl::StatusOr<double> v = Transform(e, cell.value, row, source);
        if (!v.ok()) return v.status();
        cells[e.column] = *v;
        if (e.imputed >= 0) ++present[static_cast<size_t>(e.imputed)];
      }
      if (indicator) {
        const size_t at = e.first_output + static_cast<size_t>(std::max(0, p.levels_size() - 1));
        cells[at] = cell.missing ? 1.0 : 0.0;
      }
    }
    ++out.table.num_rows;
  }
  for (size_t k = 0; k < entries.size(); ++k) {
    if (refused[k] == 0) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": column '", entries[k].prep->column(), "' has ", refused[k],
        " cells that are missing (empty, NA or text; the first on line ", refused_line[k],
        "): the task refuses them (set its prepare entry's `missing`)"));
  }
  out.imputation_counts = std::move(present);
  for (const std::vector<double>& counts : level_counts) {
    out.imputation_counts.insert(out.imputation_counts.end(), counts.begin(), counts.end());
  }
  if (out.table.num_rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no row is left after dropping the rows with missing cells"));
  }
  if (pooled != nullptr) RETURN_IF_ERROR(StandardizeColumns(dataset, *pooled, entries, &out.table));
  return out;
}

}  // namespace tessera::client
