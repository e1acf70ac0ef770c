// Federated analytics against the pooled truth: the example queries in deploy/examples
// run through RunSimulation (secure aggregation of every sum), and every released value
// must equal what the test computes directly from the CSV file: counts, histogram bins and
// sums of integer columns exactly, sums of decimal columns to 1e-12 relative, means and
// (population) variances to 1e-9 relative. In a simulation every site holds its share of
// the training rows and of the test rows, and an analytics task reads both, so the
// pooled set is the whole file. Which cells are suppressed is computed here too, from the
// rows each simulated site was given (the files the simulation wrote) and the release rule
// of proto/analytics.h, written again independently.
//
// The attacks (issue 7, item 4): `tessera simulate QUERY --clients 5 DATA.csv --json` on a
// filter that keeps fewer rows than the minimum cell size prints no count, sum, mean or
// variance of them, and none of the kept row's values appears on stdout or stderr.
#include "proto/analytics.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/work_processor.h"
#include "common/files.h"
#include "crypto/hash.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/task.pb.h"
#include "proto/validation.h"
#include "simulation/simulation.h"
#include "tests/research/research_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::research {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The file read independently of the product's CSV reader: header, then rows of numbers.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  size_t Column(const std::string& name) const {
    for (size_t j = 0; j < header.size(); ++j) {
      if (header[j] == name) return j;
    }
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
};

Table ReadTable(const std::string& path) {
  Table t;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::string line;
  std::getline(in, line);
  std::stringstream head(line);
  for (std::string cell; std::getline(head, cell, ',');) t.header.push_back(cell);
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) {
      row.push_back(std::strtod(cell.c_str(), nullptr));
    }
    EXPECT_EQ(row.size(), t.header.size()) << line;
    t.rows.push_back(std::move(row));
  }
  return t;
}

bool Keeps(const v1::AnalyticsSpec::Filter& f, double x) {
  switch (f.op()) {
    case v1::AnalyticsSpec::Filter::EQ:
      return x == f.value();
    case v1::AnalyticsSpec::Filter::NE:
      return x != f.value();
    case v1::AnalyticsSpec::Filter::LT:
      return x < f.value();
    case v1::AnalyticsSpec::Filter::LE:
      return x <= f.value();
    case v1::AnalyticsSpec::Filter::GT:
      return x > f.value();
    case v1::AnalyticsSpec::Filter::GE:
      return x >= f.value();
    default:
      ADD_FAILURE() << "unknown op";
      return false;
  }
}

void ExpectRelativeNear(double actual, long double expected, double tolerance,
                        const std::string& what) {
  const long double scale = std::max<long double>(std::fabs(expected), 1e-300L);
  EXPECT_LE(std::fabs(static_cast<long double>(actual) - expected) / scale, tolerance)
      << what << ": got " << actual << ", pooled " << static_cast<double>(expected);
}

// The rows each simulated site holds: its training file and its test file, as the
// simulation wrote them under `dir` (site-01, site-02, ...).
std::vector<Table> ReadSites(const std::string& dir, size_t num_sites) {
  std::vector<Table> sites;
  for (size_t s = 1; s <= num_sites; ++s) {
    const std::string site_dir = absl::StrFormat("%s/site-%02d", dir, s);
    Table t = ReadTable(site_dir + "/train.csv");
    if (std::ifstream(site_dir + "/test.csv").good()) {
      Table test = ReadTable(site_dir + "/test.csv");
      EXPECT_EQ(test.header, t.header);
      t.rows.insert(t.rows.end(), test.rows.begin(), test.rows.end());
    }
    sites.push_back(std::move(t));
  }
  return sites;
}

// Histogram cell of x: bin b for [e_b, e_b+1) (the last one closed), then below, then above.
size_t CellOf(double x, const v1::AnalyticsSpec::Query& q) {
  const int edges = q.histogram_edges_size();
  if (x < q.histogram_edges(0)) return static_cast<size_t>(edges - 1);
  if (x > q.histogram_edges(edges - 1)) return static_cast<size_t>(edges);
  int b = 0;
  while (b + 1 < edges - 1 && x >= q.histogram_edges(b + 1)) ++b;
  return static_cast<size_t>(b);
}

// The release rule of proto/analytics.h, from every site's kept values of one column.
struct Release {
  bool main = false;
  std::vector<int64_t> totals;  // histogram cells: bins, below, above
  std::vector<bool> released;
  uint32_t suppressed = 0;
};

Release ExpectedRelease(const std::vector<std::vector<double>>& kept,
                        const v1::AnalyticsSpec::Query& q, int64_t k) {
  const size_t cells = q.histogram_edges_size() >= 2 ? q.histogram_edges_size() + 1 : 0;
  Release r;
  r.totals.assign(cells, 0);
  std::vector<bool> withheld(cells, false);
  bool main_withheld = false;
  int64_t count = 0;
  for (const std::vector<double>& site : kept) {
    const int64_t n = static_cast<int64_t>(site.size());
    main_withheld = main_withheld || (n > 0 && n < k);
    count += n;
    std::vector<int64_t> mine(cells, 0);
    for (double x : site) {
      if (cells > 0) ++mine[CellOf(x, q)];
    }
    for (size_t i = 0; i < cells; ++i) {
      withheld[i] = withheld[i] || (mine[i] > 0 && mine[i] < k);
      r.totals[i] += mine[i];
    }
  }
  r.main = !main_withheld && count >= k;
  r.released.assign(cells, false);
  if (!r.main) {
    r.suppressed = static_cast<uint32_t>(1 + cells);
    return r;
  }
  int64_t hidden = 0;
  for (size_t i = 0; i < cells; ++i) {
    r.released[i] = !withheld[i] && r.totals[i] >= k;
    if (!r.released[i]) {
      hidden += r.totals[i];
      ++r.suppressed;
    }
  }
  while (r.suppressed > 0 && hidden < k && r.suppressed < cells) {
    size_t smallest = cells;
    for (size_t i = 0; i < cells; ++i) {
      if (r.released[i] && (smallest == cells || r.totals[i] < r.totals[smallest])) smallest = i;
    }
    r.released[smallest] = false;
    hidden += r.totals[smallest];
    ++r.suppressed;
  }
  return r;
}

std::string BinName(const v1::AnalyticsSpec::Query& q, int b) {
  const int edges = q.histogram_edges_size();
  return absl::StrCat(q.column(), ".bin[", q.histogram_edges(b), ",", q.histogram_edges(b + 1),
                      b + 2 == edges ? "]" : ")");
}

// Checks every query of `spec` in `metrics` against the pooled rows of `sites` (which must
// hold exactly the rows of `table`): released cells equal the pooled values, suppressed
// cells have no metric at all. Returns how many metrics were checked.
int ExpectPooledAnswers(const v1::AnalyticsSpec& spec, const Table& table,
                        const std::vector<Table>& sites,
                        const std::map<std::string, double>& metrics) {
  {
    std::multiset<std::vector<double>> all(table.rows.begin(), table.rows.end()), dealt;
    for (const Table& s : sites) dealt.insert(s.rows.begin(), s.rows.end());
    EXPECT_TRUE(all == dealt) << "the sites together hold exactly the file's rows";
  }
  int checked = 0;
  auto metric = [&](const std::string& name) {
    auto it = metrics.find(name);
    EXPECT_NE(it, metrics.end()) << "no metric " << name;
    ++checked;
    return it == metrics.end() ? std::nan("") : it->second;
  };
  auto absent = [&](const std::string& name) {
    EXPECT_EQ(metrics.count(name), 0u) << name << " is suppressed but was released";
  };
  const int64_t k = spec.min_cell_size() == 0 ? 10 : spec.min_cell_size();
  for (const v1::AnalyticsSpec::Query& q : spec.queries()) {
    const std::string& c = q.column();
    const size_t j = table.Column(c);
    const size_t f = spec.has_filter() ? table.Column(spec.filter().column()) : 0;
    std::vector<std::vector<double>> kept(sites.size());
    std::vector<double> pooled;
    for (size_t s = 0; s < sites.size(); ++s) {
      for (const std::vector<double>& row : sites[s].rows) {
        if (spec.has_filter() && !Keeps(spec.filter(), row[f])) continue;
        kept[s].push_back(row[j]);
        pooled.push_back(row[j]);
      }
    }
    EXPECT_GT(pooled.size(), 0u);
    EXPECT_LT(pooled.size(), table.rows.size()) << "the filter keeps every row";
    const Release r = ExpectedRelease(kept, q, k);
    EXPECT_EQ(metric(c + ".suppressed_cells"), r.suppressed) << c;
    if (!r.main) {
      for (const char* part : {".count", ".sum", ".mean", ".variance", ".below", ".above"}) {
        absent(c + part);
      }
    } else {
      // Two-pass mean and variance in long double; an exact integer sum when every value
      // is an integer.
      long double sum = 0;
      bool integers = true;
      int64_t exact = 0;
      for (double x : pooled) {
        sum += x;
        integers = integers && x == std::floor(x);
        if (integers) exact += static_cast<int64_t>(x);
      }
      const long double n = static_cast<long double>(pooled.size());
      const long double mean = sum / n;
      long double squares = 0;
      for (double x : pooled) squares += (x - mean) * (x - mean);
      EXPECT_EQ(metric(c + ".count"), static_cast<double>(pooled.size())) << c;
      if (integers) {
        EXPECT_EQ(metric(c + ".sum"), static_cast<double>(exact)) << c << " (integer column)";
      } else {
        ExpectRelativeNear(metric(c + ".sum"), sum, 1e-12, c + ".sum (decimal column)");
      }
      ExpectRelativeNear(metric(c + ".mean"), mean, 1e-9, c + ".mean");
      ExpectRelativeNear(metric(c + ".variance"), squares / n, 1e-9, c + ".variance");
    }
    const int edges = q.histogram_edges_size();
    for (int i = 0; edges >= 2 && i <= edges; ++i) {
      const std::string name = i + 1 < edges    ? BinName(q, i)
                               : i + 1 == edges ? c + ".below"
                                                : c + ".above";
      if (r.released[static_cast<size_t>(i)]) {
        EXPECT_EQ(metric(name), static_cast<double>(r.totals[static_cast<size_t>(i)])) << name;
      } else {
        absent(name);
      }
    }
  }
  return checked;
}

class AnalyticsTest : public ::testing::Test {
 protected:
  // Returns the number of suppressed cells.
  int ExpectExampleAnswersPooledValues(const std::string& example, const std::string& dataset) {
    auto spec = LoadExample(example);
    EXPECT_OK(spec.status());
    if (!spec.ok()) return -1;
    EXPECT_TRUE(spec->has_analytics());
    const Table table = ReadTable(DataPath(dataset));
    // As the example's comment runs it: 5 sites, no test-row file (a seeded 80/20 split,
    // which an analytics task reads whole anyway).
    auto result = Simulate(*spec, dataset, 5, "iid", temp_.path(), /*reference_split=*/false);
    EXPECT_OK(result.status());
    if (!result.ok()) return -1;
    Report(example, *result);
    EXPECT_EQ(result->task.state(), v1::TASK_COMPLETED) << result->task.state_reason();
    const size_t held =
        std::accumulate(result->site_train_rows.begin(), result->site_train_rows.end(), size_t{0}) +
        std::accumulate(result->site_test_rows.begin(), result->site_test_rows.end(), size_t{0});
    EXPECT_EQ(held, table.rows.size()) << "the sites together hold the whole file";
    // One round (no statistics round precedes a query), all five sites in the sums.
    EXPECT_EQ(result->rounds.size(), 1u);
    if (result->rounds.empty()) return -1;
    EXPECT_EQ(result->rounds.back().round(), 1u);
    EXPECT_EQ(result->rounds.back().fit_participants_size(), 5);
    // The simulation's work dir (research_util's Simulate): one directory per site.
    const std::vector<Table> sites = ReadSites(temp_.File(spec->name()), 5);
    const int checked = ExpectPooledAnswers(spec->analytics(), table, sites, result->final_metrics);
    EXPECT_EQ(static_cast<size_t>(checked), result->final_metrics.size())
        << "every released value was checked";
    int suppressed = 0;
    for (const auto& q : spec->analytics().queries()) {
      suppressed += static_cast<int>(result->final_metrics[q.column() + ".suppressed_cells"]);
    }
    return suppressed;
  }

  testing::TempDir temp_;
};

TEST_F(AnalyticsTest, RotterdamQueryEqualsPooledValues) {
  // The age tails (below 50, above 80) are held by 1..9 patients at some sites.
  EXPECT_EQ(ExpectExampleAnswersPooledValues("rotterdam_query", "rotterdam_survival"), 2);
}

TEST_F(AnalyticsTest, DiabetesQueryWithFilterAndHistogramsEqualsPooledValues) {
  EXPECT_EQ(ExpectExampleAnswersPooledValues("diabetes_query", "diabetes_progression"), 0);
}

// ---- Attacks: a filter that singles out a few people ----

std::string Quote(const std::string& s) { return absl::StrCat("'", s, "'"); }

struct Output {
  int exit_code = -1;
  std::string out, err;
};

// Runs the console with `args`, stdout captured, stderr through `err_path`.
Output RunConsole(const std::vector<std::string>& args, const std::string& err_path) {
  std::vector<std::string> quoted = {Quote(TESSERA_CONSOLE_BIN)};
  for (const std::string& a : args) quoted.push_back(Quote(a));
  const std::string command =
      absl::StrCat(absl::StrJoin(quoted, " "), " 2>", Quote(err_path), " </dev/null");
  Output result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.err = common::ReadFile(err_path).value_or("");
  return result;
}

// Every number written in `text`: JSON values, log fields, the parts of timestamps.
std::vector<double> NumbersIn(const std::string& text) {
  static const std::regex kNumber(R"([0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  std::vector<double> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kNumber);
       it != std::sregex_iterator(); ++it) {
    out.push_back(std::strtod(it->str().c_str(), nullptr));
  }
  return out;
}

class AnalyticsAttack : public ::testing::Test {
 protected:
  // `tessera simulate QUERY --clients 5 DATA.csv --json` on the query `text`; the JSON's
  // "final" object in `final`.
  Output Simulate(const std::string& text, const std::string& dataset,
                  google::protobuf::Struct* final) {
    const std::string query = temp_.File("query.textproto");
    testing::WriteTestFile(query, text);
    Output run = RunConsole({"simulate", query, "--clients", "5", DataPath(dataset), "--json"},
                            temp_.File("stderr"));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    google::protobuf::Struct json;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(run.out, &json).ok()) << run.out;
    if (json.fields().contains("state")) {
      EXPECT_EQ(json.fields().at("state").string_value(), "TASK_COMPLETED") << run.out;
    }
    if (json.fields().contains("final")) *final = json.fields().at("final").struct_value();
    return run;
  }

  // The rows of `dataset` that `filter` keeps.
  std::vector<std::vector<double>> Kept(const std::string& dataset, const std::string& column,
                                        v1::AnalyticsSpec::Filter::Op op, double value,
                                        Table* table) {
    *table = ReadTable(DataPath(dataset));
    v1::AnalyticsSpec::Filter f;
    f.set_op(op);
    f.set_value(value);
    std::vector<std::vector<double>> kept;
    for (const auto& row : table->rows) {
      if (Keeps(f, row[table->Column(column)])) kept.push_back(row);
    }
    return kept;
  }

  testing::TempDir temp_;
};

// The names "final" holds for `column`.
std::set<std::string> NamesOf(const google::protobuf::Struct& final, const std::string& column) {
  std::set<std::string> names;
  for (const auto& [name, value] : final.fields()) {
    if (name.rfind(column + ".", 0) == 0) names.insert(name);
  }
  return names;
}

// No number within 1e-9 (relative) of any of `secrets` in `text`.
void ExpectNoneWritten(const std::string& text, const std::vector<double>& secrets,
                       const std::string& where) {
  for (double v : NumbersIn(text)) {
    for (double secret : secrets) {
      EXPECT_GT(std::fabs(v - secret), 1e-9 * std::fabs(secret))
          << secret << " (a kept row's value) appears on " << where;
    }
  }
}

TEST_F(AnalyticsAttack, SmallCellIsNotReleased) {
  // One patient has BMI >= 42 (42.2, s5 5.0106): before, this query printed her values.
  Table table;
  const auto kept = Kept("diabetes_progression", "bmi", v1::AnalyticsSpec::Filter::GE, 42, &table);
  ASSERT_EQ(kept.size(), 1u);
  const double bmi = kept[0][table.Column("bmi")], s5 = kept[0][table.Column("s5")];
  google::protobuf::Struct final;
  const Output run = Simulate(R"pb(
                                name: "attack-one-patient"
                                dataset { id: "diabetes" }
                                analytics {
                                  queries { column: "s5" }
                                  queries {
                                    column: "bmi"
                                    histogram_edges: [ 20, 30, 40, 50 ]
                                  }
                                  queries { column: "progression" }
                                  filter { column: "bmi" op: GE value: 42 }
                                }
                                min_clients: 3
                              )pb",
                              "diabetes_progression", &final);
  EXPECT_THAT(NamesOf(final, "s5"), ElementsAre("s5.suppressed_cells"));
  EXPECT_THAT(NamesOf(final, "bmi"), ElementsAre("bmi.suppressed_cells"));
  EXPECT_THAT(NamesOf(final, "progression"), ElementsAre("progression.suppressed_cells"));
  EXPECT_EQ(final.fields().at("bmi.suppressed_cells").number_value(), 1 + 5);
  // Her values, their squares (Q), anywhere in what the researcher sees.
  const std::vector<double> secrets = {bmi, bmi * bmi, s5, s5 * s5};
  ExpectNoneWritten(run.out, secrets, "stdout");
  ExpectNoneWritten(run.err, secrets, "stderr");
  EXPECT_THAT(run.out, Not(HasSubstr("5.0106")));
}

TEST_F(AnalyticsAttack, FewRowsAtSeveralSitesAreNotReleased) {
  // Four patients aged 75 or more, spread over the sites.
  Table table;
  const auto kept = Kept("diabetes_progression", "age", v1::AnalyticsSpec::Filter::GE, 75, &table);
  ASSERT_EQ(kept.size(), 4u);
  std::vector<double> secrets;
  for (const char* column : {"bmi", "s5"}) {
    double sum = 0;
    for (const auto& row : kept) sum += row[table.Column(column)];
    secrets.push_back(sum);
    secrets.push_back(sum / 4);
  }
  google::protobuf::Struct final;
  const Output run = Simulate(R"pb(
                                name: "attack-four-patients"
                                dataset { id: "diabetes" }
                                analytics {
                                  queries { column: "bmi" }
                                  queries { column: "s5" }
                                  filter { column: "age" op: GE value: 75 }
                                }
                                min_clients: 3
                              )pb",
                              "diabetes_progression", &final);
  EXPECT_THAT(NamesOf(final, "bmi"), ElementsAre("bmi.suppressed_cells"));
  EXPECT_THAT(NamesOf(final, "s5"), ElementsAre("s5.suppressed_cells"));
  ExpectNoneWritten(run.out, secrets, "stdout");
  ExpectNoneWritten(run.err, secrets, "stderr");
}

TEST_F(AnalyticsAttack, LoneOutlierCannotBeDerivedFromTheHistogram) {
  // One patient of 2982 is older than 89.5. With `age.count`, the bin [20, 89.5] and
  // `below` released, count - bin - below would be her: the whole histogram is suppressed.
  google::protobuf::Struct final;
  const Output run = Simulate(R"pb(
                                name: "attack-oldest-patient"
                                dataset { id: "rotterdam" }
                                analytics {
                                  queries {
                                    column: "age"
                                    histogram_edges: [ 20, 89.5 ]
                                  }
                                  filter { column: "age" op: GE value: 0 }
                                }
                                min_clients: 3
                              )pb",
                              "rotterdam_survival", &final);
  EXPECT_THAT(NamesOf(final, "age"), ElementsAre("age.count", "age.mean", "age.sum",
                                                 "age.suppressed_cells", "age.variance"));
  ASSERT_TRUE(final.fields().contains("age.sum"));
  EXPECT_EQ(final.fields().at("age.count").number_value(), 2982);
  EXPECT_EQ(final.fields().at("age.suppressed_cells").number_value(), 3);
  // The scan the other attacks rely on finds a released value.
  EXPECT_THAT(NumbersIn(run.out), Contains(final.fields().at("age.sum").number_value()));
}

// ---- The site's own floor and withholding, in the real site code ----

TEST(AnalyticsSiteTest, RefusesAMinCellSizeBelowItsPolicyAndWithholdsSmallCells) {
  testing::TempDir temp;
  const std::string csv = temp.File("site.csv");
  std::string rows = "age,glucose\n";
  for (int i = 0; i < 40; ++i) absl::StrAppend(&rows, 30 + i % 20, ",", 90 + i, "\n");
  for (double glucose : {131.5, 142.25, 150.75}) absl::StrAppend(&rows, "81,", glucose, "\n");
  testing::WriteTestFile(csv, rows);
  v1::ClientConfig config;
  config.set_coordinator_address("localhost:1");
  config.add_datasets()->set_id("clinic");
  config.mutable_datasets(0)->set_train_csv(csv);
  config.mutable_policy()->set_min_cell_size(20);
  proto::ApplyClientDefaults(&config);
  client::WorkProcessor site("site-a", config);

  v1::WorkItem item;
  item.set_task_id("task-1");
  item.set_round(1);
  item.set_stage(v1::STAGE_ANALYTICS);
  item.set_cohort_size(5);
  v1::TaskSpec& spec = *item.mutable_spec();
  spec.set_name("over-80");
  spec.mutable_dataset()->set_id("clinic");
  spec.mutable_analytics()->add_queries()->set_column("glucose");
  spec.mutable_analytics()->mutable_filter()->set_column("age");
  spec.mutable_analytics()->mutable_filter()->set_op(v1::AnalyticsSpec::Filter::GE);
  spec.mutable_analytics()->mutable_filter()->set_value(80);
  proto::ApplyTaskDefaults(&spec);  // min_cell_size 10
  item.set_spec_hash(crypto::HashTaskSpec(spec));
  client::WorkOutcome refused = site.Process(item);
  EXPECT_FALSE(refused.contribution.has_value());
  EXPECT_EQ(refused.decline.reason(), v1::Decline::POLICY_REFUSED);
  EXPECT_THAT(refused.decline.detail(),
              AllOf(HasSubstr("min_cell_size 10"), HasSubstr("minimum cell size 20")));

  // At k = 20 the site answers, and withholds the query: it holds 3 patients of 80+.
  spec.mutable_analytics()->set_min_cell_size(20);
  item.set_spec_hash(crypto::HashTaskSpec(spec));
  client::WorkOutcome answered = site.Process(item);
  ASSERT_TRUE(answered.contribution.has_value()) << answered.decline.detail();
  std::vector<double> want(proto::AnalyticsLength(spec.analytics()), 0.0);
  want[1] = 1;  // the main cell's withheld entry
  EXPECT_EQ(*answered.contribution, want);
}

}  // namespace
}  // namespace tessera::research
