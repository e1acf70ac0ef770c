#include "client/csv.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/files.h"
#include "common/status.h"

namespace tessera::client {
namespace {

// An error quotes a cell only if it is at most this long (a number in full precision,
// "-1.2345678901234567e-100", fits). A longer cell is described by its length: a file
// with another separator is one cell per row, and a row must never reach a log line.
constexpr size_t kMaxQuotedBytes = 24;

std::string Quote(std::string_view cell) {
  if (cell.size() > kMaxQuotedBytes) {
    std::string out = absl::StrCat("a cell of ", cell.size(), " bytes");
    if (cell.find_first_of(";\t") != std::string_view::npos) {
      absl::StrAppend(&out, " (is the separator a comma?)");
    }
    return out;
  }
  // Escaped: a control byte in a file must not garble the one-line log format.
  return absl::StrCat("'", absl::CHexEscape(absl::string_view(cell.data(), cell.size())), "'");
}

// Column names are schema, not records: shown escaped, cut only if absurdly long.
std::string QuoteName(std::string_view name) {
  constexpr size_t kMaxNameBytes = 64;
  std::string_view shown = name.substr(0, kMaxNameBytes);
  return absl::StrCat("'", absl::CHexEscape(absl::string_view(shown.data(), shown.size())),
                      name.size() > kMaxNameBytes ? "...'" : "'");
}

// Fast path for the commonest cell, a short unsigned integer ("0", "255"): most of an
// image or one-hot file. Returns the end of the digits, or nullptr if the cell is not
// such an integer (then from_chars decides). Up to 15 digits the value is exact.
inline const char* ParseSmallInteger(const char* begin, const char* end, double* value) {
  const char* p = begin;
  uint64_t v = 0;
  while (p != end && p - begin < 16 && static_cast<unsigned char>(*p - '0') < 10) {
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  if (p == begin || p - begin > 15 || (p != end && *p != ',')) return nullptr;
  *value = static_cast<double>(v);
  return p;
}

// Where [begin, end) of one line ends, without its '\r' if the line has one.
const char* LineEnd(const char* begin, const char* newline) {
  return (newline > begin && newline[-1] == '\r') ? newline - 1 : newline;
}

const char* FindNewline(const char* begin, const char* end) {
  const void* nl = std::memchr(begin, '\n', static_cast<size_t>(end - begin));
  return nl == nullptr ? end : static_cast<const char*>(nl);
}

std::string_view CellAt(const char* begin, const char* line_end) {
  const void* comma = std::memchr(begin, ',', static_cast<size_t>(line_end - begin));
  const char* cell_end = comma == nullptr ? line_end : static_cast<const char*>(comma);
  return std::string_view(begin, static_cast<size_t>(cell_end - begin));
}

absl::Status ParseHeader(std::string_view line, const std::string& source,
                         std::vector<std::string>* header) {
  absl::flat_hash_map<std::string_view, size_t> seen;
  size_t column = 0;
  size_t start = 0;
  while (true) {
    ++column;
    size_t comma = line.find(',', start);
    std::string_view name = line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const std::string where = absl::StrCat(source, ":1:", column, ": ");
    if (name.empty()) {
      if (comma == std::string_view::npos && column > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, "header ends with a comma (empty column name)"));
      }
      return absl::InvalidArgumentError(absl::StrCat(where, "empty column name in the header"));
    }
    if (name.find('"') != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where, "column name ", QuoteName(name),
                                                     " has a quote; quoting is not supported"));
    }
    if (std::any_of(name.begin(), name.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "column name ", QuoteName(name), " has a control character"));
    }
    auto [it, inserted] = seen.emplace(name, column);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "duplicate column name ", QuoteName(name), " (also column ", it->second, ")"));
    }
    header->emplace_back(name);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return absl::OkStatus();
}

// The error for a cell that did not parse as a finite number.
// `parsed_whole_cell` is whether from_chars consumed the cell entirely.
absl::Status CellError(const std::string& source, size_t line, size_t column, std::string_view cell,
                       std::errc ec, bool parsed_whole_cell) {
  const std::string where = absl::StrCat(source, ":", line, ":", column, ": ");
  if (cell.empty()) return absl::InvalidArgumentError(absl::StrCat(where, "empty cell"));
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, Quote(cell), " is out of the range of a double"));
  }
  if (ec == std::errc() && parsed_whole_cell) {
    // The value itself was NaN or infinite.
    return absl::InvalidArgumentError(absl::StrCat(where, Quote(cell), " is not a finite number"));
  }
  return absl::InvalidArgumentError(absl::StrCat(where, Quote(cell), " is not a number"));
}

absl::Status RaggedRowError(const std::string& source, size_t line, const char* begin,
                            const char* line_end, size_t num_columns) {
  const size_t cells = static_cast<size_t>(std::count(begin, line_end, ',')) + 1;
  if (cells == num_columns + 1 && line_end[-1] == ',') {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", line,
                                                   ": row ends with a comma (row has ", cells,
                                                   " cells, the header has ", num_columns, ")"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", line, ": row has ", cells, " cells, the header has ", num_columns));
}

}  // namespace

absl::StatusOr<CsvTable> LoadCsv(const std::string& path, CellPolicy cells) {
  ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
  return ParseCsv(text, path, cells);
}

absl::StatusOr<CsvTable> ParseCsv(const std::string& text, const std::string& source_name,
                                  CellPolicy cells) {
  const char* p = text.data();
  const char* const end = p + text.size();
  // A UTF-8 byte-order mark (spreadsheets write one) would otherwise become part of the
  // first column's name and make it unfindable.
  if (text.size() >= 3 && std::memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
  if (p == end) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": file is empty (no header row)"));
  }

  CsvTable table;
  const char* newline = FindNewline(p, end);
  const char* line_end = LineEnd(p, newline);
  RETURN_IF_ERROR(ParseHeader(std::string_view(p, static_cast<size_t>(line_end - p)), source_name,
                              &table.header));
  const size_t num_columns = table.header.size();
  const bool mark = cells == CellPolicy::kMarkNonNumeric;
  if (mark) {
    table.non_numeric_cells.assign(num_columns, 0);
    table.first_non_numeric_line.assign(num_columns, 0);
  }

  // One pass to size the output: the number of lines left bounds the number of rows.
  const char* body = newline == end ? end : newline + 1;
  const size_t max_rows = static_cast<size_t>(std::count(body, end, '\n')) + 1;
  table.values.reserve(max_rows * num_columns);

  size_t line = 1;
  p = body;
  while (p < end) {
    ++line;
    newline = FindNewline(p, end);
    line_end = LineEnd(p, newline);
    if (line_end == p) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ":", line, ": empty line"));
    }
    const char* cell = p;
    size_t column = 0;
    while (true) {
      ++column;
      if (column > num_columns) {
        return RaggedRowError(source_name, line, p, line_end, num_columns);
      }
      double value = 0;
      if (const char* digits_end = ParseSmallInteger(cell, line_end, &value)) {
        table.values.push_back(value);
        if (digits_end == line_end) break;
        cell = digits_end + 1;
        continue;
      }
      auto [next, ec] = std::from_chars(cell, line_end, value);
      const bool at_cell_end = next == line_end || *next == ',';
      if (ec != std::errc() || !at_cell_end || !std::isfinite(value)) {
        if (!mark) {
          return CellError(source_name, line, column, CellAt(cell, line_end), ec, at_cell_end);
        }
        // Kept as NaN and counted; the cell ends at the next comma.
        if (table.non_numeric_cells[column - 1]++ == 0) {
          table.first_non_numeric_line[column - 1] = line;
        }
        value = std::numeric_limits<double>::quiet_NaN();
        next = std::find(cell, line_end, ',');
        table.cell_text.emplace(table.values.size(), std::string(cell, next));
      }
      table.values.push_back(value);
      if (next == line_end) break;
      cell = next + 1;
    }
    if (column != num_columns) {
      return RaggedRowError(source_name, line, p, line_end, num_columns);
    }
    ++table.num_rows;
    p = newline == end ? end : newline + 1;
  }
  if (table.num_rows == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": file has a header but no data rows"));
  }
  return table;
}

CsvTable SelectTableRows(const CsvTable& table, const std::vector<bool>& rows, bool keep) {
  CsvTable out;
  out.header = table.header;
  const size_t width = table.header.size();
  const bool marked = !table.non_numeric_cells.empty();
  if (marked) {
    out.non_numeric_cells.assign(width, 0);
    out.first_non_numeric_line.assign(width, 0);
  }
  for (size_t r = 0; r < table.num_rows && r < rows.size(); ++r) {
    if (rows[r] != keep) continue;
    const size_t from = r * width;
    const size_t to = out.num_rows * width;
    out.values.insert(out.values.end(), table.values.begin() + static_cast<std::ptrdiff_t>(from),
                      table.values.begin() + static_cast<std::ptrdiff_t>(from + width));
    if (marked) {
      for (size_t c = 0; c < width; ++c) {
        if (!std::isnan(table.values[from + c])) continue;
        if (out.non_numeric_cells[c]++ == 0) out.first_non_numeric_line[c] = r + 2;
        auto text = table.cell_text.find(from + c);
        if (text != table.cell_text.end()) out.cell_text.emplace(to + c, text->second);
      }
    }
    ++out.num_rows;
  }
  return out;
}

}  // namespace tessera::client
