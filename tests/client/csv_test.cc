#include "client/csv.h"

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(ParseCsvTest, ParsesHeaderAndRowMajorValues) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("a,b,c\n1,2.5,-3\n4e2,0.125,6\n", "t.csv"));
  EXPECT_THAT(table.header, ElementsAre("a", "b", "c"));
  EXPECT_EQ(table.num_rows, 2u);
  EXPECT_THAT(table.values, ElementsAre(1, 2.5, -3, 400, 0.125, 6));
}

TEST(ParseCsvTest, ValuesMatchFromChars) {
  // Short integers take a fast path; every cell must still read as from_chars reads it.
  const std::vector<std::string> cells = {"0",
                                          "7",
                                          "007",
                                          "255",
                                          "-0",
                                          "-12",
                                          "1.",
                                          ".5",
                                          "1e3",
                                          "1E-3",
                                          "1e+05",
                                          "0.1184",
                                          "17.99",
                                          "1001.0",
                                          "123456789012345",
                                          "1234567890123456",
                                          "12345678901234567890",
                                          "9007199254740993",
                                          "2.2250738585072014e-308"};
  std::string text = "a\n";
  for (const std::string& cell : cells) text += cell + "\n";
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv(text, "t.csv"));
  ASSERT_EQ(table.values.size(), cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    double expected = 0;
    std::from_chars(cells[i].data(), cells[i].data() + cells[i].size(), expected);
    EXPECT_EQ(table.values[i], expected) << cells[i];
    EXPECT_EQ(std::signbit(table.values[i]), std::signbit(expected)) << cells[i];
  }
}

TEST(ParseCsvTest, AcceptsMissingFinalNewline) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("a,b\n1,2\n3,4", "t.csv"));
  EXPECT_EQ(table.num_rows, 2u);
  EXPECT_THAT(table.values, ElementsAre(1, 2, 3, 4));
}

TEST(ParseCsvTest, AcceptsCrlf) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("a,b\r\n1,2\r\n3,4\r\n", "t.csv"));
  EXPECT_THAT(table.header, ElementsAre("a", "b"));
  EXPECT_EQ(table.num_rows, 2u);
  EXPECT_THAT(table.values, ElementsAre(1, 2, 3, 4));
}

TEST(ParseCsvTest, SkipsUtf8ByteOrderMark) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("\xEF\xBB\xBF"
                                                "a,b\n1,2\n",
                                                "t.csv"));
  EXPECT_THAT(table.header, ElementsAre("a", "b"));
}

TEST(ParseCsvTest, SingleColumn) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, ParseCsv("y\n0\n1\n", "t.csv"));
  EXPECT_THAT(table.values, ElementsAre(0, 1));
}

TEST(ParseCsvTest, RejectsEmptyFile) {
  EXPECT_THAT(ParseCsv("", "site1/train.csv"),
              StatusIs(kInvalid, "site1/train.csv: file is empty (no header row)"));
}

TEST(ParseCsvTest, RejectsHeaderOnly) {
  EXPECT_THAT(ParseCsv("a,b\n", "t.csv"),
              StatusIs(kInvalid, "t.csv: file has a header but no data rows"));
  EXPECT_THAT(ParseCsv("a,b", "t.csv"), StatusIs(kInvalid, HasSubstr("no data rows")));
}

TEST(ParseCsvTest, RejectsRaggedRows) {
  EXPECT_THAT(ParseCsv("a,b,c\n1,2,3\n1,2\n", "site1/train.csv"),
              StatusIs(kInvalid, "site1/train.csv:3: row has 2 cells, the header has 3"));
  EXPECT_THAT(ParseCsv("a,b\n1,2\n4,5,6\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:3: row has 3 cells, the header has 2"));
}

TEST(ParseCsvTest, RejectsTrailingComma) {
  EXPECT_THAT(ParseCsv("a,b\n1,2,\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:2: row ends with a comma")));
  EXPECT_THAT(ParseCsv("a,b,\n1,2\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:1:3: header ends with a comma")));
}

TEST(ParseCsvTest, RejectsNonNumericCellWithLineAndColumn) {
  EXPECT_THAT(ParseCsv("a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,2,3\n9,9,9\n1,2,3\n1,2,3\n1,2,3\n1,2,3\n"
                       "1,2,3\n1,2,3\n1,2,3\n1,abc,3\n",
                       "site1/train.csv"),
              StatusIs(kInvalid, "site1/train.csv:14:2: 'abc' is not a number"));
}

TEST(ParseCsvTest, RejectsNumberWithTrailingGarbage) {
  EXPECT_THAT(ParseCsv("a,b\n1,2x\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:2:2: '2x' is not a number"));
  EXPECT_THAT(ParseCsv("a,b\n12a,2\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:2:1: '12a' is not a number"));
  EXPECT_THAT(ParseCsv("a,b\n+1,2\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:2:1: '+1' is not a number"));
  EXPECT_THAT(ParseCsv("a,b\n1, 2\n", "t.csv"), StatusIs(kInvalid, HasSubstr("t.csv:2:2:")));
  EXPECT_THAT(ParseCsv("a,b\n\"1\",2\n", "t.csv"), StatusIs(kInvalid, HasSubstr("t.csv:2:1:")));
  EXPECT_THAT(ParseCsv("a,b\n0x10,2\n", "t.csv"), StatusIs(kInvalid, HasSubstr("t.csv:2:1:")));
}

TEST(ParseCsvTest, RejectsNonFiniteValues) {
  for (const char* cell : {"nan", "inf", "-inf", "NaN", "infinity"}) {
    EXPECT_THAT(ParseCsv(std::string("a,b\n1,") + cell + "\n", "t.csv"),
                StatusIs(kInvalid, HasSubstr("t.csv:2:2:")))
        << cell;
  }
  EXPECT_THAT(ParseCsv("a\nnan\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:2:1: 'nan' is not a finite number"));
  EXPECT_THAT(ParseCsv("a\n1e999\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:2:1: '1e999' is out of the range")));
}

TEST(ParseCsvTest, RejectsEmptyCells) {
  EXPECT_THAT(ParseCsv("a,b,c\n1,,3\n", "t.csv"), StatusIs(kInvalid, "t.csv:2:2: empty cell"));
  EXPECT_THAT(ParseCsv("a,b\n,2\n", "t.csv"), StatusIs(kInvalid, "t.csv:2:1: empty cell"));
}

TEST(ParseCsvTest, RejectsEmptyLines) {
  EXPECT_THAT(ParseCsv("a,b\n1,2\n\n3,4\n", "t.csv"), StatusIs(kInvalid, "t.csv:3: empty line"));
  EXPECT_THAT(ParseCsv("a,b\n1,2\n\n", "t.csv"), StatusIs(kInvalid, "t.csv:3: empty line"));
  EXPECT_THAT(ParseCsv("a,b\r\n1,2\r\n\r\n", "t.csv"), StatusIs(kInvalid, "t.csv:3: empty line"));
}

TEST(ParseCsvTest, RejectsBadHeaderNames) {
  EXPECT_THAT(ParseCsv("a,a\n1,2\n", "t.csv"),
              StatusIs(kInvalid, "t.csv:1:2: duplicate column name 'a' (also column 1)"));
  EXPECT_THAT(ParseCsv("a,,c\n1,2,3\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:1:2: empty column name")));
  EXPECT_THAT(ParseCsv("\n1\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:1:1: empty column name")));
  EXPECT_THAT(ParseCsv("\"a\",b\n1,2\n", "t.csv"),
              StatusIs(kInvalid, HasSubstr("t.csv:1:1: column name")));
}

TEST(ParseCsvTest, ErrorsNeverQuoteARow) {
  // A file whose separator is not a comma: the whole row is one cell. The error must not
  // carry any of it.
  const std::string secret_row = "12.5;33.1;0.25;4711;19880203;1;0;1;0;1;0;1;0";
  absl::StatusOr<CsvTable> table = ParseCsv("a\n" + secret_row + "\n", "t.csv");
  EXPECT_THAT(table, StatusIs(kInvalid,
                              "t.csv:2:1: a cell of 44 bytes (is the separator a "
                              "comma?) is not a number"));
  // A bad cell in the middle of a row shows that cell only.
  table = ParseCsv("a,b,c\n111111,abc,333333\n", "t.csv");
  ASSERT_THAT(table, StatusIs(kInvalid, HasSubstr("'abc'")));
  EXPECT_THAT(std::string(table.status().message()),
              AllOf(Not(HasSubstr("111111")), Not(HasSubstr("333333"))));
  // A long cell is described, not shown.
  table = ParseCsv("a,b\n1,patient-0000471119880203-xyz\n", "t.csv");
  EXPECT_THAT(table, StatusIs(kInvalid, "t.csv:2:2: a cell of 28 bytes is not a number"));
}

TEST(ParseCsvTest, EscapesControlBytesInErrors) {
  absl::StatusOr<CsvTable> table = ParseCsv("a\n1\r2\n", "t.csv");
  ASSERT_THAT(table, StatusIs(kInvalid, "t.csv:2:1: '1\\r2' is not a number"));
}

TEST(LoadCsvTest, ReadsFileAndNamesItInErrors) {
  tessera::testing::TempDir dir;
  const std::string good = dir.File("good.csv");
  tessera::testing::WriteTestFile(good, "x,y\n1,0\n2,1\n");
  ASSERT_OK_AND_ASSIGN(CsvTable table, LoadCsv(good));
  EXPECT_EQ(table.num_rows, 2u);

  const std::string bad = dir.File("bad.csv");
  tessera::testing::WriteTestFile(bad, "x,y\n1,0\n2\n");
  EXPECT_THAT(LoadCsv(bad), StatusIs(kInvalid, bad + ":3: row has 1 cells, the header has 2"));
}

TEST(LoadCsvTest, MissingFileIsNotFound) {
  tessera::testing::TempDir dir;
  const std::string path = dir.File("absent.csv");
  EXPECT_THAT(LoadCsv(path), StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST(LoadCsvTest, ShippedBreastCancerData) {
  ASSERT_OK_AND_ASSIGN(CsvTable table, LoadCsv(std::string(TESSERA_SOURCE_DIR) +
                                               "/deploy/data/breast_cancer_wisconsin.csv"));
  EXPECT_EQ(table.num_rows, 569u);
  ASSERT_EQ(table.header.size(), 31u);
  EXPECT_EQ(table.header.front(), "mean_radius");
  EXPECT_EQ(table.header.back(), "malignant");
  EXPECT_DOUBLE_EQ(table.values[0], 17.99);
  EXPECT_DOUBLE_EQ(table.values[1], 10.38);
}

TEST(ParseCsvTest, MarkNonNumericKeepsOtherCellsAndCountsEachColumn) {
  const std::string text = "a,note,b\n1,x,2\n3,,NA\n5,inf,6\n";
  EXPECT_THAT(ParseCsv(text, "f.csv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f.csv:2:2")));
  ASSERT_OK_AND_ASSIGN(CsvTable t, ParseCsv(text, "f.csv", CellPolicy::kMarkNonNumeric));
  ASSERT_EQ(t.num_rows, 3u);
  EXPECT_EQ(t.non_numeric_cells, (std::vector<size_t>{0, 3, 1}));
  EXPECT_EQ(t.first_non_numeric_line, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(t.values[0], 1);
  EXPECT_TRUE(std::isnan(t.values[1]));
  EXPECT_EQ(t.values[2], 2);
  EXPECT_TRUE(std::isnan(t.values[5]));  // NA
  EXPECT_EQ(t.values[8], 6);
  // The file's shape is still checked.
  EXPECT_THAT(ParseCsv("a,b\n1,x,3\n", "f.csv", CellPolicy::kMarkNonNumeric),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row has 3 cells")));
}

}  // namespace
}  // namespace tessera::client
