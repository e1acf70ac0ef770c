// Fuzz target: model deltas (proto/model_delta.h) as a site receives them from a coordinator
// (WorkItem.model_delta): DecodeModelDelta of arbitrary data against a base of up to 4,096
// values. Decoding either refuses or gives exactly the base's size; a model it gives encodes
// back to data that decodes to the same words (the encoding is exact).
//
// Input: 2 bytes (big-endian) give the base's size modulo 4,097; the rest is the data.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "proto/model_delta.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  fuzz::FuzzInput in(data, size);
  const size_t high = in.Byte();
  const size_t n = (high << 8 | in.Byte()) % 4097;
  // The base every seed of the corpus was encoded against (tests/fuzz/corpus/model_delta).
  std::vector<float> base(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = static_cast<float>((i * 37) % 101) / 50.0F - 1.0F;
  }
  const std::string_view bytes = in.Rest();
  auto model = proto::DecodeModelDelta(base, bytes);
  if (!model.ok()) return 0;
  if (model->size() != n) std::abort();
  auto again = proto::EncodeModelDelta(base, *model);
  if (!again.ok()) std::abort();
  auto decoded = proto::DecodeModelDelta(base, *again);
  if (!decoded.ok() || decoded->size() != n) std::abort();
  for (size_t i = 0; i < n; ++i) {
    if (std::bit_cast<uint32_t>((*decoded)[i]) != std::bit_cast<uint32_t>((*model)[i])) {
      std::abort();
    }
  }
  return 0;
}
