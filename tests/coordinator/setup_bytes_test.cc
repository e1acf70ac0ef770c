// The bytes a secure session's first step shares between every site's item
// (coordinator/internal/setup_bytes.h, model_bytes.h): a model serialized once, straight from its
// floats, and handed to the board as it is, not copied.
#include "coordinator/internal/setup_bytes.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/transfer.h"

namespace tessera::coordinator::internal {
namespace {

std::vector<float> Model(size_t n) {
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = std::sin(static_cast<float>(i)) * 3.5f;
  return values;
}

TEST(SetupBytesTest, ASerializedModelIsTheModelParametersMessage) {
  std::vector<float> odd = {0.0f,
                            -0.0f,
                            1.5f,
                            std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min()};
  // Sizes around the length varint's byte boundaries (16 and 4,096 values, 2^21 bytes).
  for (const std::vector<float>& values : {std::vector<float>{}, odd, Model(31), Model(32),
                                           Model(4095), Model(4096), Model(size_t{1} << 19)}) {
    SCOPED_TRACE(values.size());
    v1::ModelParameters message;
    message.mutable_values()->Assign(values.begin(), values.end());
    EXPECT_EQ(*SerializedModel(values), message.SerializeAsString());
  }
}

// The first item as the sites parse it, from the shared bytes and the model apart.
v1::WorkItem Whole(const SetupBytes& bytes) {
  v1::WorkItem item;
  EXPECT_TRUE(item.ParseFromString(*bytes.shared));
  if (bytes.model != nullptr) {
    EXPECT_EQ(item.model_size(), bytes.model->size());
    EXPECT_TRUE(item.mutable_model()->ParseFromString(*bytes.model));
    item.clear_model_size();
  }
  return item;
}

TEST(SetupBytesTest, AModelKeptApartGivesTheSameItemsAsAModelInTheItem) {
  for (const size_t n : {size_t{1000}, size_t{300000}}) {  // inline; apart (above 1 MiB)
    SCOPED_TRACE(n);
    const std::vector<float> values = Model(n);
    v1::WorkItem first;
    first.set_model_hash("hash");
    first.set_l2(0.5);
    first.set_work_id("cleared");
    v1::WorkItem embedded = first;
    embedded.mutable_model()->mutable_values()->Assign(values.begin(), values.end());
    const std::shared_ptr<const std::string> model = SerializedModel(values);

    const SetupBytes apart = SharedSetupBytes(first, model, nullptr);
    const SetupBytes inside = SharedSetupBytes(embedded, nullptr, nullptr);
    EXPECT_EQ(Whole(apart).SerializeAsString(), Whole(inside).SerializeAsString());
    EXPECT_TRUE(Whole(apart).work_id().empty());
    EXPECT_EQ(Whole(apart).model().values_size(), static_cast<int>(n));
    if (model->size() > proto::kModelChunkBytes) {
      EXPECT_EQ(apart.model, model);  // the same bytes, not a copy
    } else {
      EXPECT_EQ(apart.model, nullptr);
    }
  }
}

}  // namespace
}  // namespace tessera::coordinator::internal
