#include "tests/glm/glm_data.h"

#include <cmath>
#include <fstream>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace tessera::glm::test_data {

Table ReadCsv(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  Table table;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (first) {
      table.header = std::move(cells);
      first = false;
    } else {
      table.rows.push_back(std::move(cells));
    }
  }
  return table;
}

double Number(const std::string& text) {
  double value = 0;
  EXPECT_TRUE(absl::SimpleAtod(text, &value)) << text;
  return value;
}

std::string Source(const std::string& relative) {
  return std::string(TESSERA_SOURCE_DIR) + "/" + relative;
}

const std::vector<Model>& Models() {
  static const auto* models = new std::vector<Model>{
      {"smoking_nhis_binomial", "smoking_nhis", "smoker", {}, "", Family::kBinomial},
      {"diabetes_gaussian", "diabetes_progression", "progression", {}, "", Family::kGaussian},
      {"rotterdam_nodes_poisson",
       "rotterdam_survival",
       "nodes",
       {"time", "event"},
       "",
       Family::kPoisson},
      {"rotterdam_rate_poisson", "rotterdam_survival", "event", {"time"}, "time", Family::kPoisson},
  };
  return *models;
}

Split Deal(const Model& model, int count, bool fixed_effects) {
  const Table data = ReadCsv(Source("deploy/data/" + model.dataset + ".csv"));
  std::set<int> test;
  {
    std::ifstream in(Source("deploy/data/splits/" + model.dataset + ".test_rows.txt"));
    int row = 0;
    while (in >> row) test.insert(row);
  }
  Split split;
  const int intercepts = fixed_effects ? count : 1;
  for (int s = 0; s < intercepts; ++s) {
    split.names.push_back(fixed_effects ? "sitesite_" + std::to_string(s + 1) : "(Intercept)");
    split.intercepts.push_back(s);
  }
  std::vector<int> features;
  for (size_t c = 0; c < data.header.size(); ++c) {
    const std::string& name = data.header[c];
    bool excluded = name == model.label;
    for (const std::string& e : model.excluded) excluded = excluded || name == e;
    if (excluded) continue;
    features.push_back(static_cast<int>(c));
    split.names.push_back(name);
  }
  const int label = data.Column(model.label);
  const int offset = model.log_offset.empty() ? -1 : data.Column(model.log_offset);
  std::vector<std::vector<int>> rows_of(static_cast<size_t>(count));
  int training = 0;
  for (int r = 0; r < static_cast<int>(data.rows.size()); ++r) {
    if (test.contains(r)) continue;
    rows_of[static_cast<size_t>(training++ % count)].push_back(r);
  }
  const int p = static_cast<int>(features.size()) + intercepts;
  for (size_t s = 0; s < rows_of.size(); ++s) {
    const std::vector<int>& rows = rows_of[s];
    SiteData site;
    const int n = static_cast<int>(rows.size());
    site.x.resize(n, p);
    site.y.resize(n);
    if (offset >= 0) site.offset.resize(n);
    for (int i = 0; i < n; ++i) {
      const std::vector<std::string>& cells = data.rows[static_cast<size_t>(rows[i])];
      for (int c = 0; c < intercepts; ++c) {
        site.x(i, c) = (!fixed_effects || c == static_cast<int>(s)) ? 1 : 0;
      }
      for (int j = 0; j < static_cast<int>(features.size()); ++j) {
        site.x(i, j + intercepts) = Number(cells[static_cast<size_t>(features[j])]);
      }
      site.y(i) = Number(cells[static_cast<size_t>(label)]);
      if (offset >= 0) site.offset(i) = std::log(Number(cells[static_cast<size_t>(offset)]));
    }
    split.sites.push_back(std::move(site));
  }
  return split;
}

void ExpectRelative(double got, double want, double tolerance, const std::string& what) {
  EXPECT_LE(std::abs(got - want), tolerance * std::max(std::abs(want), 1e-300))
      << what << ": got " << got << ", R gives " << want;
}

}  // namespace tessera::glm::test_data
