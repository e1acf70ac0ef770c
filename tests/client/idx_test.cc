#include "client/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::client {
namespace {

using ::tessera::testing::StatusIs;
using ::tessera::testing::TempDir;
using ::tessera::testing::WriteTestFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

void AppendBigEndian(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

// An IDX file of unsigned bytes with dimensions `dims` and values 0, 1, 2, ... (mod 256).
std::string Idx(const std::vector<uint32_t>& dims, size_t drop = 0, size_t extra = 0) {
  std::string out;
  AppendBigEndian(&out, 0x0800u | static_cast<uint32_t>(dims.size()));
  size_t count = 1;
  for (uint32_t d : dims) {
    AppendBigEndian(&out, d);
    count *= d;
  }
  for (size_t i = 0; i + drop < count + extra; ++i) out.push_back(static_cast<char>(i % 256));
  return out;
}

std::string Labels(const std::vector<uint8_t>& labels) {
  std::string out;
  AppendBigEndian(&out, 0x00000801);
  AppendBigEndian(&out, static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) out.push_back(static_cast<char>(l));
  return out;
}

void WriteGzip(const std::string& path, const std::string& contents) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, contents.data(), static_cast<unsigned>(contents.size())),
            static_cast<int>(contents.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

TEST(ParseIdxTest, ParsesImagesAndLabels) {
  ASSERT_OK_AND_ASSIGN(IdxArray images, ParseIdx(Idx({2, 3, 2}), "images"));
  EXPECT_THAT(images.dims, ElementsAre(2, 3, 2));
  EXPECT_THAT(images.values, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  ASSERT_OK_AND_ASSIGN(IdxArray labels, ParseIdx(Labels({7, 255}), "labels"));
  EXPECT_THAT(labels.dims, ElementsAre(2));
  EXPECT_THAT(labels.values, ElementsAre(7, 255));
}

TEST(ParseIdxTest, RejectsBadFilesNamingTheProblem) {
  EXPECT_THAT(ParseIdx("", "f"), StatusIs(kInvalid, HasSubstr("f: 0 bytes, too short")));
  EXPECT_THAT(ParseIdx("\x89PNG\r\n", "f"),
              StatusIs(kInvalid, HasSubstr("f: bad magic 0x89504e47")));
  std::string no_dims = Idx({});
  EXPECT_THAT(ParseIdx(no_dims, "f"), StatusIs(kInvalid, HasSubstr("bad magic 0x00000800")));
  std::string floats = Idx({1});
  floats[2] = 0x0D;
  EXPECT_THAT(ParseIdx(floats, "f"),
              StatusIs(kInvalid, HasSubstr("value type 0x0d (float32) is not supported")));
  EXPECT_THAT(ParseIdx(Idx({60000, 28, 28}).substr(0, 10), "f"),
              StatusIs(kInvalid, HasSubstr("f: truncated header: 3 dimensions need 16 bytes")));
  EXPECT_THAT(ParseIdx(Idx({10, 4}, /*drop=*/3), "f"),
              StatusIs(kInvalid, HasSubstr("f: truncated: the header promises 40 values, 37 "
                                           "follow")));
  EXPECT_THAT(ParseIdx(Idx({10, 4}, 0, /*extra=*/2), "f"),
              StatusIs(kInvalid, HasSubstr("f: 2 bytes after the last of 40 values")));
  // 2^16 x 2^16 x 2^16 values: refused before any allocation.
  std::string huge;
  AppendBigEndian(&huge, 0x00000803);
  for (int i = 0; i < 3; ++i) AppendBigEndian(&huge, 1u << 16);
  EXPECT_THAT(ParseIdx(huge, "f"), StatusIs(kInvalid, HasSubstr("more than 4294967296 values")));
}

TEST(IdxToDatasetTest, ImagesBecomeRowsOfPixels) {
  ASSERT_OK_AND_ASSIGN(IdxArray images, ParseIdx(Idx({3, 2, 2}), "i"));
  ASSERT_OK_AND_ASSIGN(IdxArray labels, ParseIdx(Labels({4, 0, 9}), "l"));
  ASSERT_OK_AND_ASSIGN(Dataset data, IdxToDataset(images, labels, "i", "l"));
  EXPECT_EQ(data.num_rows, 3u);
  EXPECT_EQ(data.num_features, 4u);
  EXPECT_THAT(data.x, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  EXPECT_THAT(data.y, ElementsAre(4, 0, 9));
  EXPECT_TRUE(data.event.empty());
}

TEST(IdxToDatasetTest, RejectsMismatchedFiles) {
  ASSERT_OK_AND_ASSIGN(IdxArray images, ParseIdx(Idx({3, 2, 2}), "i"));
  ASSERT_OK_AND_ASSIGN(IdxArray labels, ParseIdx(Labels({4, 0}), "l"));
  EXPECT_THAT(IdxToDataset(images, labels, "images.gz", "labels.gz"),
              StatusIs(kInvalid, HasSubstr("images.gz has 3 items but labels.gz has 2")));
  EXPECT_THAT(IdxToDataset(labels, labels, "a", "b"),
              StatusIs(kInvalid, HasSubstr("a: images need at least 2 dimensions")));
  EXPECT_THAT(IdxToDataset(images, images, "a", "b"),
              StatusIs(kInvalid, HasSubstr("b: labels need 1 dimension, got 3")));
}

TEST(ReadIdxFileTest, ReadsGzipAndPlainFiles) {
  TempDir dir;
  const std::string contents = Idx({300, 28, 28});  // larger than zlib's first buffer
  WriteGzip(dir.File("images.gz"), contents);
  WriteTestFile(dir.File("images.idx"), contents);
  ASSERT_OK_AND_ASSIGN(IdxArray gz, ReadIdxFile(dir.File("images.gz")));
  ASSERT_OK_AND_ASSIGN(IdxArray plain, ReadIdxFile(dir.File("images.idx")));
  EXPECT_THAT(gz.dims, ElementsAre(300, 28, 28));
  EXPECT_EQ(gz.values, plain.values);
  EXPECT_EQ(gz.values.size(), 300u * 784);
  EXPECT_EQ(gz.values[1000], 1000 % 256);

  WriteGzip(dir.File("labels.gz"), Labels(std::vector<uint8_t>(300, 3)));
  ASSERT_OK_AND_ASSIGN(Dataset data, LoadIdxDataset(dir.File("images.gz"), dir.File("labels.gz")));
  EXPECT_EQ(data.num_rows, 300u);
  EXPECT_EQ(data.num_features, 784u);
  EXPECT_EQ(data.y[299], 3);
}

TEST(ReadIdxFileTest, ReportsMissingCorruptAndTruncatedFiles) {
  TempDir dir;
  EXPECT_THAT(ReadIdxFile(dir.File("missing.gz")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.gz")));
  // A gzip stream cut short.
  WriteGzip(dir.File("full.gz"), Idx({100, 28, 28}));
  FILE* f = std::fopen(dir.File("full.gz").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string bytes(1 << 20, '\0');
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), f));
  std::fclose(f);
  ASSERT_GT(bytes.size(), 200u);
  WriteTestFile(dir.File("cut.gz"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(ReadIdxFile(dir.File("cut.gz")),
              StatusIs(kInvalid, HasSubstr("cut.gz: corrupt or truncated gzip data")));
  // Corrupt compressed data after a valid gzip header.
  std::string corrupt = bytes;
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(0xFF);
  WriteTestFile(dir.File("corrupt.gz"), corrupt);
  EXPECT_THAT(ReadIdxFile(dir.File("corrupt.gz")),
              StatusIs(kInvalid, HasSubstr("corrupt.gz: corrupt")));
  // A good gzip of a bad IDX file gets the IDX error, named by path.
  WriteGzip(dir.File("short.gz"), Idx({10, 4}, 1));
  EXPECT_THAT(ReadIdxFile(dir.File("short.gz")),
              StatusIs(kInvalid, HasSubstr("short.gz: truncated")));
}

TEST(ReadIdxFileTest, FashionMnistIfInstalled) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  absl::StatusOr<Dataset> test =
      LoadIdxDataset(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz");
  if (absl::IsNotFound(test.status())) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  ASSERT_OK(test);
  EXPECT_EQ(test->num_rows, 10000u);
  EXPECT_EQ(test->num_features, 784u);
  std::vector<int> per_class(10, 0);
  for (double y : test->y) ++per_class.at(static_cast<size_t>(y));
  EXPECT_THAT(per_class, ::testing::Each(1000));
  EXPECT_EQ(*std::max_element(test->x.begin(), test->x.end()), 255.0);
}

}  // namespace
}  // namespace tessera::client
