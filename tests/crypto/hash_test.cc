#include "crypto/hash.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/task.pb.h"

namespace tessera::crypto {
namespace {

TEST(HashTest, Sha256KnownAnswers) {
  // FIPS 180-2, appendix B.1 and B.2.
  EXPECT_EQ(ToHex(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(ToHex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256("abc").size(), 32u);
}

TEST(HashTest, ToHexIsLowercaseAndKeepsEveryByte) {
  EXPECT_EQ(ToHex(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(ToHex(""), "");
}

v1::TaskSpec SampleSpec() {
  v1::TaskSpec spec;
  spec.set_name("readmission");
  spec.set_rounds(10);
  spec.set_min_clients(3);
  spec.set_seed(42);
  spec.mutable_dataset()->set_id("admissions");
  spec.mutable_dataset()->add_features("age");
  spec.mutable_dataset()->add_features("bmi");
  spec.mutable_dataset()->set_label("readmitted");
  spec.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  spec.mutable_training()->set_learning_rate(0.1);
  return spec;
}

TEST(HashTest, TaskSpecHashIsDeterministic) {
  const v1::TaskSpec a = SampleSpec();
  v1::TaskSpec b;
  // Same values, set in a different order, and a round trip through the wire format.
  b.mutable_training()->set_learning_rate(0.1);
  b.mutable_model()->set_kind(v1::ModelSpec::LOGISTIC_REGRESSION);
  b.mutable_dataset()->set_label("readmitted");
  b.mutable_dataset()->add_features("age");
  b.mutable_dataset()->add_features("bmi");
  b.mutable_dataset()->set_id("admissions");
  b.set_seed(42);
  b.set_min_clients(3);
  b.set_rounds(10);
  b.set_name("readmission");
  v1::TaskSpec c;
  ASSERT_TRUE(c.ParseFromString(a.SerializeAsString()));
  EXPECT_EQ(HashTaskSpec(a).size(), 32u);
  EXPECT_EQ(HashTaskSpec(a), HashTaskSpec(b));
  EXPECT_EQ(HashTaskSpec(a), HashTaskSpec(c));
  // It is the SHA-256 of the canonical encoding, not of something else.
  EXPECT_EQ(HashTaskSpec(a), Sha256(a.SerializeAsString()));
}

TEST(HashTest, TaskSpecHashChangesWithEveryField) {
  const std::string base = HashTaskSpec(SampleSpec());
  std::vector<v1::TaskSpec> variants;
  auto vary = [&](auto mutate) {
    v1::TaskSpec spec = SampleSpec();
    mutate(spec);
    variants.push_back(spec);
  };
  vary([](v1::TaskSpec& s) { s.set_name("readmission2"); });
  vary([](v1::TaskSpec& s) { s.set_rounds(11); });
  vary([](v1::TaskSpec& s) { s.set_min_clients(2); });
  vary([](v1::TaskSpec& s) { s.set_seed(43); });
  vary([](v1::TaskSpec& s) { s.set_description("x"); });
  vary([](v1::TaskSpec& s) { s.mutable_dataset()->set_features(1, "height"); });
  vary([](v1::TaskSpec& s) {  // order of features matters
    s.mutable_dataset()->mutable_features()->SwapElements(0, 1);
  });
  vary([](v1::TaskSpec& s) { s.mutable_training()->set_learning_rate(0.1000001); });
  vary([](v1::TaskSpec& s) { s.mutable_model()->set_l2(0.5); });
  for (size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(HashTaskSpec(variants[i]), base) << "variant " << i;
  }
}

TEST(HashTest, ModelHashKnownAnswer) {
  const std::vector<float> params = {1.0f, -2.5f, 0.0f};
  // SHA-256 of 00 00 80 3f | 00 00 20 c0 | 00 00 00 00 (little-endian float32 words),
  // computed independently with Python's hashlib and struct.pack('<3f', ...).
  EXPECT_EQ(ToHex(HashModel(params)),
            "738e86d615200bd3391d7ae379779a8e4644bade56d93d0634aa07004fa697f3");
  EXPECT_EQ(HashModel(params),
            Sha256(std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0\x00\x00\x00\x00", 12)));
  EXPECT_EQ(ToHex(HashModel({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(HashTest, ModelHashCoversLargeModelsAcrossChunks) {
  // More than one internal buffer's worth; must equal hashing the bytes in one go.
  std::vector<float> params(5000);
  for (size_t i = 0; i < params.size(); ++i) params[i] = static_cast<float>(i) * 0.25f - 7.0f;
  std::string bytes;
  for (float f : params) {
    uint32_t bits;
    static_assert(sizeof(bits) == sizeof(f));
    std::memcpy(&bits, &f, sizeof(bits));
    for (int k = 0; k < 4; ++k) bytes.push_back(static_cast<char>((bits >> (8 * k)) & 0xff));
  }
  EXPECT_EQ(HashModel(params), Sha256(bytes));
  params[4999] = 0.0f;
  EXPECT_NE(HashModel(params), Sha256(bytes));
  // -0.0 and 0.0 are different words, so different models.
  EXPECT_NE(HashModel(std::vector<float>{0.0f}), HashModel(std::vector<float>{-0.0f}));
}

}  // namespace
}  // namespace tessera::crypto
