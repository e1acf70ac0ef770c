// IDX files (the MNIST / Fashion-MNIST format, usually gzip-compressed): a big-endian
// header, magic 0x0000TTNN (TT the value type, NN the number of dimensions) then one
// big-endian uint32 per dimension, then the values, row-major. Only unsigned-byte arrays
// (type 0x08), the type image and label files use, are supported. Every error names the
// file:
//   "t10k-images-idx3-ubyte.gz: bad magic 0x89504e47 (expected 0x000008NN, NN = 1..4): ..."
//   "train-labels-idx1-ubyte.gz: truncated: the header promises 60000 values, 59990 follow"
//   "images has 60000 items but labels has 10000"
//
// Thread-safe (no shared state).
#ifndef TESSERA_CLIENT_IDX_H_
#define TESSERA_CLIENT_IDX_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "client/dataset.h"

namespace tessera::client {

// Most values one IDX file may hold (4 GiB), against absurd headers.
inline constexpr uint64_t kMaxIdxValues = uint64_t{1} << 32;

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> values;  // row-major, the product of dims
};

// Parses the bytes of an (uncompressed) IDX file. INVALID_ARGUMENT, prefixed with
// `source_name`, for a short header, a bad magic, a value type other than unsigned
// byte, 0 or more than 4 dimensions, more than kMaxIdxValues values, fewer value bytes
// than the dimensions promise (truncated) or bytes after the last value.
absl::StatusOr<IdxArray> ParseIdx(std::string_view bytes, const std::string& source_name);

// Reads an IDX file, gzip-compressed or not (zlib reads plain files as they are).
// NOT_FOUND / PERMISSION_DENIED if it cannot be opened; INVALID_ARGUMENT for corrupt or
// truncated gzip data and for the errors of ParseIdx.
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);

// Image and label arrays as a Dataset: one row per image, its values (pixels 0..255 as
// doubles) as the features in row-major order, the label as y. INVALID_ARGUMENT if the
// images have fewer than 2 dimensions, the labels more than 1, or the item counts differ.
absl::StatusOr<Dataset> IdxToDataset(const IdxArray& images, const IdxArray& labels,
                                     const std::string& images_name,
                                     const std::string& labels_name);

// ReadIdxFile on both, then IdxToDataset.
absl::StatusOr<Dataset> LoadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path);

}  // namespace tessera::client

#endif  // TESSERA_CLIENT_IDX_H_
