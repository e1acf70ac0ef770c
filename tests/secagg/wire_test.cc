// The little-endian word encoding of vectors (secagg/internal/wire.h): the bytes every
// masked input, sum and snapshot input travel and rest as, whatever the host's byte order.
#include "secagg/internal/wire.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::secagg::internal {
namespace {

TEST(WireWordsTest, WordsGoAsLittleEndianBytesAndComeBack) {
  const std::vector<uint32_t> words = {0x04030201u, 0xa0b0c0d0u, 0u, 0xffffffffu};
  const std::string bytes = WordsToBytes(words);
  EXPECT_EQ(bytes,
            std::string("\x01\x02\x03\x04\xd0\xc0\xb0\xa0\x00\x00\x00\x00\xff\xff\xff\xff", 16));
  std::vector<uint32_t> back(words.size(), 7u);
  BytesToWords(bytes, back);
  EXPECT_EQ(back, words);
}

TEST(WireWordsTest, AppendKeepsWhatWasThereAndEmptyIsNothing) {
  std::string out = "ab";
  AppendWordsAsBytes(std::vector<uint32_t>{0x64636261u}, &out);
  EXPECT_EQ(out, "ababcd");
  AppendWordsAsBytes({}, &out);
  EXPECT_EQ(out, "ababcd");
  EXPECT_EQ(WordsToBytes({}), "");
  std::vector<uint32_t> none;
  BytesToWords("", none);
  EXPECT_TRUE(none.empty());
}

TEST(WireWordsTest, OnlyTheWordsAskedForAreRead) {
  // Bytes beyond out.size() words are not read (a caller passes a longer buffer).
  std::vector<uint32_t> one(1);
  BytesToWords(std::string("\x01\x00\x00\x00\x02\x00\x00\x00", 8), one);
  EXPECT_EQ(one[0], 1u);
}

TEST(WireWordsTest, BytesAddIntoASumModuloTwoToThe32) {
  std::vector<uint32_t> sum = {1u, 0xffffffffu, 7u};
  AddBytesAsWords(WordsToBytes(std::vector<uint32_t>{0x04030201u, 2u, 0u}), sum);
  EXPECT_EQ(sum, (std::vector<uint32_t>{0x04030202u, 1u, 7u}));
  // Little-endian whatever the host: the first byte is the word's lowest.
  std::vector<uint32_t> one = {0u};
  AddBytesAsWords(std::string("\x01\x00\x00\x80", 4), one);
  EXPECT_EQ(one[0], 0x80000001u);
}

}  // namespace
}  // namespace tessera::secagg::internal
