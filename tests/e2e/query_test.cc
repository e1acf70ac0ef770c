// End-to-end federated analytics: `tessera query` against a real federation of three sites,
// whose answer must equal the statistics computed directly on the pooled rows.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/federation.h"
#include "tests/testing/status_matchers.h"

namespace tessera::e2e {
namespace {

using ::testing::HasSubstr;

class E2eQueryTest : public FederationTest {};

// The query file's answer, as printed by `tessera query --json`: metric name -> value.
std::map<std::string, double> Answer(const std::string& json) {
  std::map<std::string, double> out;
  // {"task_id": ..., "metrics": [{"name": "x.count", "value": 3}, ...]}: a tiny scan is
  // enough for what our own printer writes.
  for (absl::string_view part : absl::StrSplit(json, "\"name\": \"")) {
    size_t end = part.find('"');
    size_t value_at = part.find("\"value\": ");
    if (end == absl::string_view::npos || value_at == absl::string_view::npos) continue;
    double v = std::strtod(std::string(part.substr(value_at + 9)).c_str(), nullptr);
    out[std::string(part.substr(0, end))] = v;
  }
  return out;
}

// `answer` (a query's JSON answer, by name) against the same statistics computed directly
// over every malignant row of `data`: count, sum, mean and variance of mean_radius and
// worst_area, and mean_radius's histogram with edges 15 and 20; no cell suppressed.
void ExpectThePooledStatistics(std::map<std::string, double>& answer,
                               const client::CsvTable& data) {
  auto column = [&](const std::string& name) {
    size_t j = 0;
    while (data.header[j] != name) ++j;
    return j;
  };
  const size_t w = data.header.size();
  const size_t malignant = column("malignant");
  for (const std::string name : {"mean_radius", "worst_area"}) {
    const size_t j = column(name);
    double count = 0, sum = 0, below = 0, inside = 0, above = 0;
    for (size_t r = 0; r < data.num_rows; ++r) {
      if (data.values[r * w + malignant] != 1) continue;
      const double v = data.values[r * w + j];
      count += 1;
      sum += v;
      (v < 15 ? below : v > 20 ? above : inside) += 1;
    }
    const double mean = sum / count;
    double var = 0;
    for (size_t r = 0; r < data.num_rows; ++r) {
      if (data.values[r * w + malignant] != 1) continue;
      const double d = data.values[r * w + j] - mean;
      var += d * d;
    }
    var /= count;
    SCOPED_TRACE(name);
    EXPECT_EQ(answer[name + ".count"], count);
    EXPECT_NEAR(answer[name + ".sum"], sum, 1e-12 * std::fabs(sum));
    EXPECT_NEAR(answer[name + ".mean"], mean, 1e-9 * std::fabs(mean));
    EXPECT_NEAR(answer[name + ".variance"], var, 1e-9 * var);
    EXPECT_EQ(answer[name + ".suppressed_cells"], 0);
    if (name == "mean_radius") {
      EXPECT_EQ(answer["mean_radius.bin[15,20]"], inside);
      EXPECT_EQ(answer["mean_radius.below"], below);
      EXPECT_EQ(answer["mean_radius.above"], above);
    }
  }
}

TEST_F(E2eQueryTest, QueryAnswerEqualsThePooledStatistics) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  // The table: the mean radius of malignant masses and its distribution.
  const std::string radius = temp().File("radius.textproto");
  testing::WriteTestFile(radius, R"pb(
    name: "malignant-radius"
    dataset { id: "breast_cancer" }
    analytics {
      queries {
        column: "mean_radius"
        histogram_edges: [ 15, 20 ]
      }
      filter { column: "malignant" op: EQ value: 1 }
      min_cohort: 3
    }
    min_clients: 3
  )pb");
  ASSERT_OK_AND_ASSIGN(CommandResult table, Console({"query"}, {radius}));
  ASSERT_EQ(table.exit_code(), 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("mean_radius"));
  EXPECT_THAT(table.out, HasSubstr("SUPPRESSED CELLS"));
  EXPECT_THAT(table.out, HasSubstr("histogram of mean_radius"));
  // The same query again is the same contribution: the sites refuse to answer it twice.
  ASSERT_OK_AND_ASSIGN(CommandResult again, Console({"query"}, {radius}));
  EXPECT_NE(again.exit_code(), 0);
  EXPECT_THAT(again.err, HasSubstr("ALREADY_CONTRIBUTED"));

  // JSON: another query (two columns), so another contribution. Every cell holds at least
  // 10 masses at every site (the minimum cell size), so nothing is suppressed.
  const std::string query = temp().File("query.textproto");
  testing::WriteTestFile(query, R"pb(
    name: "malignant-radius-and-area"
    dataset { id: "breast_cancer" }
    analytics {
      queries {
        column: "mean_radius"
        histogram_edges: [ 15, 20 ]
      }
      queries { column: "worst_area" }
      filter { column: "malignant" op: EQ value: 1 }
      min_cohort: 3
    }
    min_clients: 3
    max_round_attempts: 1
  )pb");
  ASSERT_OK_AND_ASSIGN(CommandResult json, Console({"query"}, {query, "--json"}));
  ASSERT_EQ(json.exit_code(), 0) << json.err;
  std::map<std::string, double> answer = Answer(json.out);

  // The same statistics, directly, over every row (the sites hold all 569 between them).
  ASSERT_OK_AND_ASSIGN(client::CsvTable data,
                       client::LoadCsv(SourcePath("deploy/data/breast_cancer_wisconsin.csv")));
  ExpectThePooledStatistics(answer, data);
  EXPECT_EQ(answer["mean_radius.count"], 212) << "the dataset has 212 malignant masses";
}

TEST_F(E2eQueryTest, QueryNamingAMissingColumnIsDeclinedBySitesAndFails) {
  ASSERT_OK(MakeTestPki());
  ASSERT_OK(SplitData());
  ASSERT_OK(StartCoordinator());
  ASSERT_OK(StartClients());
  const std::string query = temp().File("query.textproto");
  testing::WriteTestFile(query, R"pb(
    name: "no-such-column"
    dataset { id: "breast_cancer" }
    analytics { queries { column: "shoe_size" } }
    min_clients: 3
    max_round_attempts: 1
    round_deadline_seconds: 5
  )pb");
  ASSERT_OK_AND_ASSIGN(CommandResult result, Console({"query"}, {query}));
  EXPECT_NE(result.exit_code(), 0);
  EXPECT_THAT(result.err, HasSubstr("FAILED"));
  // Each site says why in its own log only; the coordinator hears a generic decline.
  for (const std::string& name : Sites()) {
    EXPECT_THAT(site(name).process->LogTail(50), HasSubstr("shoe_size")) << name;
  }
  EXPECT_THAT(coordinator()->LogTail(200), ::testing::Not(HasSubstr("shoe_size")));
}

}  // namespace
}  // namespace tessera::e2e
