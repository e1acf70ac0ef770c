// A model sent as its difference from a model the site already holds (WorkItem.model_delta,
// proto/federation.proto): the words of the two float32 vectors XORed, their bytes regrouped
// by position in the word (all first bytes, then all second bytes, ...) and deflated (zlib).
//
// Between two successive global models of a training round most words keep their sign,
// exponent and leading mantissa bits, so the XOR's high bytes are mostly zero and the
// regrouped bytes deflate to about half the model (docs/performance.md has the figures).
//
// The encoding is exact: decoding gives back the very words that were encoded, and the site
// checks them against the work item's model_hash as it would an inline model. Decoding
// never allocates more than the base's size: data that would inflate to more (or to less)
// is refused.
//
// Thread-compatible: pure functions.
#ifndef TESSERA_PROTO_MODEL_DELTA_H_
#define TESSERA_PROTO_MODEL_DELTA_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::proto {

// The encoding of `next` against `base`. INVALID_ARGUMENT if their sizes differ; INTERNAL if
// zlib fails.
absl::StatusOr<std::string> EncodeModelDelta(std::span<const float> base,
                                             std::span<const float> next);

// The model `data` encodes against `base`: as many values as `base` holds. DATA_LOSS,
// naming what is wrong, if `data` is not a zlib stream, is cut short, is followed by more
// bytes or inflates to more or fewer bytes than the model takes.
absl::StatusOr<std::vector<float>> DecodeModelDelta(std::span<const float> base,
                                                    std::string_view data);

}  // namespace tessera::proto

#endif  // TESSERA_PROTO_MODEL_DELTA_H_
