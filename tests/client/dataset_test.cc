#include "client/dataset.h"

#include <cmath>
#include <string>
#include <vector>

#include "client/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

CsvTable Table() {
  absl::StatusOr<CsvTable> table = ParseCsv(
      "a,b,c,label\n"
      "1,10,100,0\n"
      "2,20,200,1\n"
      "3,30,300,1\n",
      "t.csv");
  EXPECT_TRUE(table.ok()) << table.status();
  return *std::move(table);
}

Dataset Small() {
  // Features (x1, x2): (1, -2), (3, 0), (5, 4); labels 0, 1, 1.
  Dataset data;
  data.num_rows = 3;
  data.num_features = 2;
  data.x = {1, -2, 3, 0, 5, 4};
  data.y = {0, 1, 1};
  return data;
}

TEST(SelectColumnsTest, PicksColumnsByNameInTaskOrder) {
  ASSERT_OK_AND_ASSIGN(Dataset data, SelectColumns(Table(), {"c", "a"}, "label", "t.csv"));
  EXPECT_EQ(data.num_rows, 3u);
  EXPECT_EQ(data.num_features, 2u);
  EXPECT_THAT(data.x, ElementsAre(100, 1, 200, 2, 300, 3));
  EXPECT_THAT(data.y, ElementsAre(0, 1, 1));
}

TEST(SelectColumnsTest, LabelNeedNotBeLast) {
  ASSERT_OK_AND_ASSIGN(Dataset data, SelectColumns(Table(), {"label"}, "b", "t.csv"));
  EXPECT_THAT(data.x, ElementsAre(0, 1, 1));
  EXPECT_THAT(data.y, ElementsAre(10, 20, 30));
}

TEST(SelectColumnsTest, MissingFeatureIsNamed) {
  EXPECT_THAT(SelectColumns(Table(), {"a", "age"}, "label", "site1/train.csv"),
              StatusIs(kInvalid,
                       "site1/train.csv: column 'age' not found (the file has: a, b, "
                       "c, label)"));
}

TEST(SelectColumnsTest, MissingLabelIsNamed) {
  EXPECT_THAT(SelectColumns(Table(), {"a"}, "outcome", "t.csv"),
              StatusIs(kInvalid, HasSubstr("column 'outcome' not found")));
}

TEST(SelectColumnsTest, ListingIsCutAfterTenNames) {
  std::string csv;
  for (int i = 0; i < 12; ++i) csv += (i ? ",c" : "c") + std::to_string(i);
  csv += "\n";
  for (int i = 0; i < 12; ++i) csv += i ? ",0" : "0";
  csv += "\n";
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv(csv, "t.csv"));
  absl::StatusOr<Dataset> data = SelectColumns(table, {"zz"}, "c0", "t.csv");
  EXPECT_THAT(data, StatusIs(kInvalid, HasSubstr("c8, c9, ... (12 columns in all))")));
  EXPECT_THAT(std::string(data.status().message()), ::testing::Not(HasSubstr("c10")));
}

TEST(ComputeStatisticsTest, SumsAndSumsOfSquares) {
  const LocalStatistics stats = ComputeStatistics(Small());
  EXPECT_EQ(stats.num_rows, 3u);
  // x1: 1 + 3 + 5 = 9, 1 + 9 + 25 = 35; x2: -2 + 0 + 4 = 2, 4 + 0 + 16 = 20.
  EXPECT_THAT(stats.sums, ElementsAre(9, 2));
  EXPECT_THAT(stats.sums_of_squares, ElementsAre(35, 20));
}

TEST(StandardizeTest, SubtractsMeanAndDividesByStddev) {
  Dataset data = Small();
  // Population statistics of x1: mean 3, var (4 + 0 + 4) / 3; of x2: mean 2/3.
  const double sd1 = std::sqrt(8.0 / 3.0);
  const double mean2 = 2.0 / 3.0;
  const double sd2 = std::sqrt(20.0 / 3.0 - mean2 * mean2);
  const std::vector<double> mean = {3, mean2};
  const std::vector<double> stddev = {sd1, sd2};
  ASSERT_OK(Standardize(mean, stddev, &data));
  const std::vector<double> expected = {-2 / sd1, (-2 - mean2) / sd2, 0, (0 - mean2) / sd2,
                                        2 / sd1,  (4 - mean2) / sd2};
  EXPECT_THAT(data.x, Pointwise(DoubleEq(), expected));
  EXPECT_THAT(data.y, ElementsAre(0, 1, 1));  // labels untouched

  // The standardised columns have mean 0 and population variance 1.
  const LocalStatistics stats = ComputeStatistics(data);
  for (int j = 0; j < 2; ++j) {
    EXPECT_NEAR(stats.sums[j], 0, 1e-12);
    EXPECT_NEAR(stats.sums_of_squares[j] / 3, 1, 1e-12);
  }
}

TEST(StandardizeTest, RejectsBadStatisticsAndLeavesDataAlone) {
  Dataset data = Small();
  const std::vector<double> one = {0};
  const std::vector<double> two = {0, 0};
  EXPECT_THAT(Standardize(one, one, &data), StatusIs(kInvalid, HasSubstr("2 features")));
  EXPECT_THAT(Standardize(two, std::vector<double>{1, 0}, &data),
              StatusIs(kInvalid, HasSubstr("feature 1")));
  EXPECT_THAT(Standardize(two, std::vector<double>{-1, 1}, &data),
              StatusIs(kInvalid, HasSubstr("feature 0")));
  EXPECT_THAT(Standardize(two, std::vector<double>{1, NAN}, &data),
              StatusIs(kInvalid, HasSubstr("feature 1")));
  EXPECT_THAT(Standardize(two, std::vector<double>{1, INFINITY}, &data),
              StatusIs(kInvalid, HasSubstr("feature 1")));
  EXPECT_THAT(Standardize(std::vector<double>{NAN, 0}, std::vector<double>{1, 1}, &data),
              StatusIs(kInvalid, HasSubstr("feature 0")));
  EXPECT_EQ(data.x, Small().x);
}

TEST(CheckBinaryLabelsTest, AcceptsZeroOneAndNamesFirstBadRow) {
  Dataset data = Small();
  EXPECT_OK(CheckBinaryLabels(data, "t.csv"));
  data.y = {0, 2, -1};
  EXPECT_THAT(CheckBinaryLabels(data, "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv: data row 1 ")));
  data.y = {0, 1, 0.5};
  EXPECT_THAT(CheckBinaryLabels(data, "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv: data row 2 ")));
}

TEST(SelectColumnsTest, SurvivalDataGetsItsEventColumn) {
  // "label" as the time, "a" as a (here not 0/1) event column: selection does not judge.
  ASSERT_OK_AND_ASSIGN(Dataset data, SelectColumns(Table(), {"b", "c"}, "label", "a", "t.csv"));
  EXPECT_THAT(data.x, ElementsAre(10, 100, 20, 200, 30, 300));
  EXPECT_THAT(data.y, ElementsAre(0, 1, 1));
  EXPECT_THAT(data.event, ElementsAre(1, 2, 3));
  // Without an event column it is the four-argument overload.
  ASSERT_OK_AND_ASSIGN(data, SelectColumns(Table(), {"b"}, "label", "", "t.csv"));
  EXPECT_TRUE(data.event.empty());
  EXPECT_THAT(SelectColumns(Table(), {"b"}, "label", "died", "t.csv"),
              StatusIs(kInvalid, HasSubstr("column 'died' not found")));
  EXPECT_THAT(SelectColumns(Table(), {"b"}, "label", "label", "t.csv"),
              StatusIs(kInvalid, HasSubstr("cannot be both time and event")));
}

TEST(SelectRowsTest, CopiesRowsInOrderWithRepeats) {
  Dataset data = Small();
  data.event = {1, 0, 1};
  const std::vector<size_t> rows = {2, 0, 2};
  const Dataset picked = SelectRows(data, rows);
  EXPECT_EQ(picked.num_rows, 3u);
  EXPECT_EQ(picked.num_features, 2u);
  EXPECT_THAT(picked.x, ElementsAre(5, 4, 1, -2, 5, 4));
  EXPECT_THAT(picked.y, ElementsAre(1, 0, 1));
  EXPECT_THAT(picked.event, ElementsAre(1, 1, 1));
  EXPECT_TRUE(SelectRows(Small(), rows).event.empty());
}

TEST(CheckClassLabelsTest, AcceptsClassesAndNamesFirstBadRow) {
  Dataset data = Small();
  data.y = {0, 2, 1};
  EXPECT_OK(CheckClassLabels(data, 3, "t.csv"));
  EXPECT_THAT(CheckClassLabels(data, 2, "t.csv"),
              StatusIs(kInvalid,
                       "t.csv: data row 1 (0-based, header not counted) has label 2; "
                       "expected a class 0..1"));
  data.y = {0, 1, 0.5};
  EXPECT_THAT(CheckClassLabels(data, 3, "t.csv"), StatusIs(kInvalid, HasSubstr("data row 2 ")));
  data.y = {NAN, 1, 0};
  EXPECT_THAT(CheckClassLabels(data, 3, "t.csv"), StatusIs(kInvalid, HasSubstr("data row 0 ")));
}

TEST(CheckSurvivalDataTest, NeedsZeroOneEventsAndNonNegativeTimes) {
  Dataset data = Small();
  data.y = {5, 0, 2.5};
  EXPECT_THAT(CheckSurvivalData(data, "t.csv"),
              StatusIs(kInvalid, HasSubstr("event indicator per row; got 0 for 3 rows")));
  data.event = {1, 0, 1};
  EXPECT_OK(CheckSurvivalData(data, "t.csv"));
  data.event = {1, 0, 0.5};
  EXPECT_THAT(CheckSurvivalData(data, "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv: data row 2 (0-based, header not counted) "
                                           "has event 0.5")));
  data.event = {1, 0, 1};
  data.y = {5, -1, 2};
  EXPECT_THAT(
      CheckSurvivalData(data, "t.csv"),
      StatusIs(kInvalid, HasSubstr("data row 1 (0-based, header not counted) has time -1")));
}

TEST(SelectColumnsTest, AColumnWithNonNumericCellsIsRefusedOnlyWhenSelected) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("a,note,y\n1,abc,0\n2,,1\n3,NA,1\n", "f.csv",
                                                CellPolicy::kMarkNonNumeric));
  ASSERT_OK_AND_ASSIGN(Dataset data, SelectColumns(table, {"a"}, "y", "f.csv"));
  EXPECT_EQ(data.x, (std::vector<double>{1, 2, 3}));
  const auto refused = SelectColumns(table, {"a", "note"}, "y", "f.csv");
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("column 'note' has 3 cells that are not finite numbers")));
  EXPECT_THAT(refused.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(refused.status().message(), ::testing::Not(HasSubstr("abc")));
}

}  // namespace
}  // namespace tessera::client
