#include "proto/model_delta.h"

#include <zlib.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::proto {
namespace {

using ::testing::HasSubstr;

// A model and the next one a round of training could give: every value moved by a small
// step, as successive global models do.
std::vector<float> Model(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> value(0.0F, 0.1F);
  std::vector<float> model(n);
  for (float& v : model) v = value(rng);
  return model;
}

std::vector<float> Stepped(const std::vector<float>& model, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> step(0.0F, 2e-4F);
  std::vector<float> next = model;
  for (float& v : next) v += step(rng);
  return next;
}

std::vector<uint32_t> Words(const std::vector<float>& v) {
  std::vector<uint32_t> words;
  words.reserve(v.size());
  for (float f : v) words.push_back(std::bit_cast<uint32_t>(f));
  return words;
}

// The encoder compresses one byte plane at a time into pieces; its output is the zlib
// stream one compress2 call over the four planes gives (the format deltas were measured
// and decoded with), for models of several output pieces and the smallest ones.
std::string OneCallDelta(const std::vector<float>& base, const std::vector<float>& next) {
  const size_t n = next.size();
  std::string planes(4 * n, '\0');
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = std::bit_cast<uint32_t>(base[i]) ^ std::bit_cast<uint32_t>(next[i]);
    for (size_t k = 0; k < 4; ++k) planes[k * n + i] = static_cast<char>((x >> (8 * k)) & 0xff);
  }
  uLongf size = compressBound(planes.size());
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                      reinterpret_cast<const Bytef*>(planes.data()), planes.size(), Z_BEST_SPEED),
            Z_OK);
  out.resize(size);
  return out;
}

TEST(ModelDeltaTest, ThePlaneByPlaneEncodingIsTheOneCallZlibStream) {
  for (const size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{400000}}) {
    SCOPED_TRACE(n);
    const std::vector<float> base = Model(n, 3);
    // Random words too, which compress badly: more output pieces.
    std::vector<float> next = Stepped(base, 4);
    for (size_t i = 0; i < n; i += 2) next[i] = Model(1, static_cast<uint32_t>(i))[0];
    absl::StatusOr<std::string> delta = EncodeModelDelta(base, next);
    ASSERT_TRUE(delta.ok()) << delta.status();
    EXPECT_EQ(*delta, OneCallDelta(base, next));
    if (n == 400000) {
      EXPECT_GT(delta->size(), size_t{512} << 10) << "several output pieces";
    }
    absl::StatusOr<std::vector<float>> decoded = DecodeModelDelta(base, *delta);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(Words(*decoded), Words(next));
  }
}

TEST(ModelDeltaTest, DecodesToTheSameWordsAndSavesAboutHalf) {
  const std::vector<float> base = Model(100'000, 1);
  const std::vector<float> next = Stepped(base, 2);
  absl::StatusOr<std::string> data = EncodeModelDelta(base, next);
  ASSERT_TRUE(data.ok()) << data.status();
  // Successive models share sign, exponent and leading mantissa bits.
  EXPECT_LT(data->size(), 4 * next.size() * 7 / 10) << data->size();
  absl::StatusOr<std::vector<float>> decoded = DecodeModelDelta(base, *data);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(Words(*decoded), Words(next));
}

TEST(ModelDeltaTest, KeepsEveryBitPattern) {
  // NaNs with payloads, infinities, negative zero and denormals come back bit for bit.
  const std::vector<float> base = {0.0F, 1.0F, -2.5F, 3.0F, 1e-40F, 7.0F};
  const std::vector<float> next = {-0.0F,
                                   std::bit_cast<float>(uint32_t{0x7fc01234}),
                                   std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::denorm_min(),
                                   7.0F};
  absl::StatusOr<std::string> data = EncodeModelDelta(base, next);
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<std::vector<float>> decoded = DecodeModelDelta(base, *data);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(Words(*decoded), Words(next));
}

TEST(ModelDeltaTest, DecodingAgainstAnotherBaseGivesAnotherModel) {
  const std::vector<float> base = Model(1000, 1);
  const std::vector<float> next = Stepped(base, 2);
  absl::StatusOr<std::string> data = EncodeModelDelta(base, next);
  ASSERT_TRUE(data.ok());
  absl::StatusOr<std::vector<float>> decoded = DecodeModelDelta(Model(1000, 3), *data);
  ASSERT_TRUE(decoded.ok());  // well-formed: only the model's hash tells (the site checks it)
  EXPECT_NE(Words(*decoded), Words(next));
}

TEST(ModelDeltaTest, EncodingRefusesModelsOfDifferentSizes) {
  absl::StatusOr<std::string> data = EncodeModelDelta(Model(10, 1), Model(11, 1));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(data.status().message(), HasSubstr("10 and 11"));
}

TEST(ModelDeltaTest, RefusesDataThatDoesNotAddUp) {
  const std::vector<float> base = Model(1000, 1);
  const std::vector<float> next = Stepped(base, 2);
  const std::string data = *EncodeModelDelta(base, next);
  struct Case {
    const char* name;
    std::string data;
    std::vector<float> base;
    const char* says;
  };
  std::string corrupt = data;
  corrupt[corrupt.size() / 2] = static_cast<char>(corrupt[corrupt.size() / 2] ^ 0x5a);
  const std::vector<Case> cases = {
      {"not zlib", std::string(200, 'x'), base, "not a whole zlib stream"},
      {"empty", "", base, "not a whole zlib stream"},
      {"cut short", data.substr(0, data.size() / 2), base, "not a whole zlib stream"},
      {"corrupt", corrupt, base, "model delta"},
      {"bytes after it", data + "extra", base, "after the end of its zlib stream"},
      // The same data against a smaller base: it would inflate past the model's size.
      {"inflates to more", data, Model(999, 1), "inflates to more than"},
      {"inflates to fewer", data, Model(1001, 1), "inflates to 4000 bytes, the model takes 4004"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<float>> decoded = DecodeModelDelta(c.base, c.data);
    ASSERT_FALSE(decoded.ok()) << c.name;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(decoded.status().message(), HasSubstr(c.says)) << c.name;
  }
}

TEST(ModelDeltaTest, AnUnchangedModelCostsAlmostNothing) {
  const std::vector<float> model = Model(100'000, 1);
  absl::StatusOr<std::string> data = EncodeModelDelta(model, model);
  ASSERT_TRUE(data.ok());
  EXPECT_LT(data->size(), 4 * model.size() / 100);
  EXPECT_EQ(Words(*DecodeModelDelta(model, *data)), Words(model));
}

}  // namespace
}  // namespace tessera::proto
