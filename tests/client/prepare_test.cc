// A site's data preparation (client/prepare.h): each rule on a small table, and refusals
// that name the column and line but never the cell.
#include "client/prepare.h"

#include <cmath>
#include <string>
#include <vector>

#include "client/csv.h"
#include "client/dataset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/federation.pb.h"
#include "proto/task.pb.h"
#include "tests/testing/status_matchers.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Prep = v1::ColumnPreparation;

CsvTable Table(const std::string& text) {
  absl::StatusOr<CsvTable> table = ParseCsv(text, "site.csv", CellPolicy::kMarkNonNumeric);
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

// Column `name` of `t`.
std::vector<double> Column(const CsvTable& t, const std::string& name) {
  const auto it = std::find(t.header.begin(), t.header.end(), name);
  EXPECT_NE(it, t.header.end()) << name;
  const size_t c = static_cast<size_t>(it - t.header.begin());
  std::vector<double> out;
  for (size_t r = 0; r < t.num_rows; ++r) out.push_back(t.values[r * t.header.size() + c]);
  return out;
}

const char kRows[] =
    "age,sex,grade,income,y\n"
    "40,female,1,1000,1\n"
    "NA,male,2,,0\n"
    "60,female,3,10,1\n"
    ",male,2,100,0\n";

Prep Entry(const std::string& column) {
  Prep p;
  p.set_column(column);
  return p;
}

TEST(PrepareTest, LevelsBecomeOneHotColumnsAgainstTheFirstByTextOrValue) {
  v1::DatasetSpec ds;
  Prep sex = Entry("sex");
  sex.add_levels("male");
  sex.add_levels("female");
  *ds.add_prepare() = sex;
  Prep grade = Entry("grade");  // numeric codes as levels
  for (const char* l : {"1", "2", "3"}) grade.add_levels(l);
  *ds.add_prepare() = grade;
  Prep age = Entry("age");
  age.set_missing(Prep::DROP_ROW);
  *ds.add_prepare() = age;
  ASSERT_OK_AND_ASSIGN(PreparedTable p, PrepareTable(Table(kRows), ds, nullptr, "site.csv"));
  EXPECT_EQ(p.table.num_rows, 2u);  // the rows without an age are dropped
  EXPECT_THAT(Column(p.table, "sex=female"), ElementsAre(1, 1));
  EXPECT_THAT(Column(p.table, "grade=2"), ElementsAre(0, 0));
  EXPECT_THAT(Column(p.table, "grade=3"), ElementsAre(0, 1));
  EXPECT_THAT(Column(p.table, "age"), ElementsAre(40, 60));
  // The prepared columns select as any other.
  ASSERT_OK_AND_ASSIGN(Dataset d,
                       SelectColumns(p.table, {"age", "sex=female", "grade=3"}, "y", "site.csv"));
  EXPECT_EQ(d.num_rows, 2u);
}

TEST(PrepareTest, MissingCellsAreImputedOrMarkedAndMeanImputationCountsThem) {
  v1::DatasetSpec ds;
  Prep age = Entry("age");
  age.set_missing(Prep::IMPUTE_MEAN);
  *ds.add_prepare() = age;
  Prep income = Entry("income");
  income.set_missing(Prep::INDICATOR);
  income.set_fill(-1);
  income.set_transform(Prep::LOG);
  income.add_clip(3);
  income.add_clip(7);
  *ds.add_prepare() = income;
  // Round 0: no mean yet, missing cells count 0 and are counted.
  ASSERT_OK_AND_ASSIGN(PreparedTable zero, PrepareTable(Table(kRows), ds, nullptr, "site.csv"));
  EXPECT_THAT(Column(zero.table, "age"), ElementsAre(40, 0, 60, 0));
  EXPECT_THAT(zero.imputation_counts, ElementsAre(2));  // age's present cells
  // Later: the pooled mean.
  v1::Standardization pooled;
  pooled.add_imputed_means(47.5);
  ASSERT_OK_AND_ASSIGN(PreparedTable p, PrepareTable(Table(kRows), ds, &pooled, "site.csv"));
  EXPECT_THAT(Column(p.table, "age"), ElementsAre(40, 47.5, 60, 47.5));
  EXPECT_THAT(Column(p.table, "income:missing"), ElementsAre(0, 1, 0, 0));
  // log(1000) = 6.9; log(10) = 2.3 clipped to 3; missing: the fill; log(100) = 4.6.
  const std::vector<double> income_values = Column(p.table, "income");
  EXPECT_NEAR(income_values[0], std::log(1000.0), 1e-12);
  EXPECT_EQ(income_values[1], -1);
  EXPECT_EQ(income_values[2], 3);
  EXPECT_NEAR(income_values[3], std::log(100.0), 1e-12);
  pooled.add_imputed_means(1);  // one mean too many
  EXPECT_THAT(PrepareTable(Table(kRows), ds, &pooled, "site.csv").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(PrepareTest, RefusalsNameTheColumnAndLineNeverTheCell) {
  v1::DatasetSpec ds;
  Prep sex = Entry("sex");
  sex.add_levels("female");
  sex.add_levels("other");  // "male" is not declared
  *ds.add_prepare() = sex;
  const absl::Status level = PrepareTable(Table(kRows), ds, nullptr, "site.csv").status();
  EXPECT_THAT(level, StatusIs(absl::StatusCode::kInvalidArgument,
                              HasSubstr("column 'sex' has a cell that is not one of its")));
  EXPECT_THAT(std::string(level.message()), HasSubstr("line 3"));
  EXPECT_THAT(std::string(level.message()), Not(HasSubstr("male")));

  v1::DatasetSpec refuse;
  *refuse.add_prepare() = Entry("age");  // MISSING_REFUSE
  EXPECT_THAT(PrepareTable(Table(kRows), refuse, nullptr, "site.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("column 'age' has 2 cells that are missing")));

  v1::DatasetSpec domain;
  Prep income = Entry("y");
  income.set_transform(Prep::LOG);
  *domain.add_prepare() = income;
  const absl::Status log = PrepareTable(Table(kRows), domain, nullptr, "site.csv").status();
  EXPECT_THAT(log, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("column 'y'")));
  EXPECT_THAT(std::string(log.message()), HasSubstr("LOG's domain"));

  v1::DatasetSpec absent;
  *absent.add_prepare() = Entry("weight");
  EXPECT_THAT(PrepareTable(Table(kRows), absent, nullptr, "site.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'weight' not found")));

  v1::DatasetSpec all_dropped;
  Prep income_drop = Entry("income");
  income_drop.set_missing(Prep::DROP_ROW);
  *all_dropped.add_prepare() = income_drop;
  Prep age_drop = Entry("age");
  age_drop.set_missing(Prep::DROP_ROW);
  *all_dropped.add_prepare() = age_drop;
  ASSERT_OK_AND_ASSIGN(PreparedTable kept,
                       PrepareTable(Table(kRows), all_dropped, nullptr, "site.csv"));
  EXPECT_EQ(kept.table.num_rows, 2u);
  v1::DatasetSpec only_age;
  *only_age.add_prepare() = age_drop;
  EXPECT_THAT(PrepareTable(Table("age,y\nNA,1\n,0\n"), only_age, nullptr, "site.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no row is left")));
}

TEST(PrepareTest, AMissingLevelTakesThePooledModeOnceKnown) {
  v1::DatasetSpec ds;
  Prep sex = Entry("sex");
  sex.add_levels("male");
  sex.add_levels("female");
  sex.set_missing(Prep::IMPUTE_MODE);
  *ds.add_prepare() = sex;
  const CsvTable table = Table("sex,y\nfemale,1\nNA,0\nmale,1\nfemale,0\n,1\n");
  // Round 0: each level's present cells; the missing ones in no level.
  ASSERT_OK_AND_ASSIGN(PreparedTable zero, PrepareTable(table, ds, nullptr, "site.csv"));
  EXPECT_THAT(zero.imputation_counts, ElementsAre(1, 2));
  EXPECT_THAT(Column(zero.table, "sex=female"), ElementsAre(1, 0, 0, 1, 0));
  v1::Standardization pooled;
  pooled.add_imputed_modes(1);
  ASSERT_OK_AND_ASSIGN(PreparedTable p, PrepareTable(table, ds, &pooled, "site.csv"));
  EXPECT_THAT(Column(p.table, "sex=female"), ElementsAre(1, 1, 0, 1, 1));
  pooled.set_imputed_modes(0, 2);  // no such level
  EXPECT_THAT(PrepareTable(table, ds, &pooled, "site.csv").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace tessera::client
