#include "client/idx.h"

#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tessera::client {
namespace {

constexpr uint8_t kUnsignedByte = 0x08;
constexpr size_t kMaxDims = 4;
constexpr unsigned kReadChunk = 1u << 20;

uint32_t BigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

const char* TypeName(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

// Closes a gzFile on every path out of ReadIdxFile.
struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};

}  // namespace

absl::StatusOr<IdxArray> ParseIdx(std::string_view bytes, const std::string& source_name) {
  if (bytes.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": ", bytes.size(), " bytes, too short for an IDX header"));
  }
  const uint32_t magic = BigEndian32(bytes.data());
  const uint8_t type = static_cast<uint8_t>((magic >> 8) & 0xFF);
  const size_t num_dims = magic & 0xFF;
  if ((magic >> 16) != 0 || num_dims == 0 || num_dims > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: bad magic 0x%08x (expected 0x000008NN, NN = 1..%d): not an IDX file",
                        source_name, magic, kMaxDims));
  }
  if (type != kUnsignedByte) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: IDX value type 0x%02x (%s) is not supported; only unsigned "
                        "bytes (0x08)",
                        source_name, type, TypeName(type)));
  }
  const size_t header = 4 + 4 * num_dims;
  if (bytes.size() < header) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": truncated header: ", num_dims,
                                                   " dimensions need ", header, " bytes, got ",
                                                   bytes.size()));
  }
  IdxArray array;
  uint64_t count = 1;
  for (size_t i = 0; i < num_dims; ++i) {
    const uint32_t dim = BigEndian32(bytes.data() + 4 + 4 * i);
    array.dims.push_back(dim);
    // count <= kMaxIdxValues = 2^32 before multiplying by a dim < 2^32: no overflow.
    count *= dim;
    if (count > kMaxIdxValues) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": dimensions describe more than ", kMaxIdxValues, " values"));
    }
  }
  const size_t available = bytes.size() - header;
  if (available < count) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": truncated: the header promises ",
                                                   count, " values, ", available, " follow"));
  }
  if (available > count) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": ", available - count,
                                                   " bytes after the last of ", count, " values"));
  }
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data() + header);
  array.values.assign(begin, begin + count);
  return array;
}

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path) {
  errno = 0;
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    const int error = errno;
    const std::string reason = error != 0 ? std::strerror(error) : "cannot open";
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": ", reason));
    if (error == EACCES) return absl::PermissionDeniedError(absl::StrCat(path, ": ", reason));
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", reason));
  }
  gzbuffer(file.get(), kReadChunk);
  std::string bytes;
  for (;;) {
    const size_t old_size = bytes.size();
    bytes.resize(old_size + kReadChunk);
    const int got = gzread(file.get(), bytes.data() + old_size, kReadChunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      if (code == Z_ERRNO) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": read error: ", std::strerror(errno)));
      }
      return absl::InvalidArgumentError(absl::StrCat(path, ": corrupt gzip data (", message, ")"));
    }
    bytes.resize(old_size + static_cast<size_t>(got));
    if (static_cast<unsigned>(got) < kReadChunk) break;
    if (bytes.size() > kMaxIdxValues + 4 + 4 * kMaxDims) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": larger than any supported IDX file"));
    }
  }
  // A stream that ends early reads as a short final chunk; zlib reports it here.
  int code = Z_OK;
  const char* message = gzerror(file.get(), &code);
  if (code != Z_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": corrupt or truncated gzip data (", message, ")"));
  }
  return ParseIdx(bytes, path);
}

absl::StatusOr<Dataset> IdxToDataset(const IdxArray& images, const IdxArray& labels,
                                     const std::string& images_name,
                                     const std::string& labels_name) {
  if (images.dims.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(images_name, ": images need at least 2 ",
                                                   "dimensions (items x values), got ",
                                                   images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(labels_name, ": labels need 1 dimension, got ", labels.dims.size()));
  }
  if (images.dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_name, " has ", images.dims[0], " items but ", labels_name, " has ", labels.dims[0]));
  }
  Dataset data;
  data.num_rows = images.dims[0];
  data.num_features = data.num_rows == 0 ? 0 : images.values.size() / data.num_rows;
  if (data.num_rows == 0) {
    data.num_features = 1;
    for (size_t i = 1; i < images.dims.size(); ++i) data.num_features *= images.dims[i];
  }
  data.x.assign(images.values.begin(), images.values.end());
  data.y.assign(labels.values.begin(), labels.values.end());
  return data;
}

absl::StatusOr<Dataset> LoadIdxDataset(const std::string& images_path,
                                       const std::string& labels_path) {
  absl::StatusOr<IdxArray> images = ReadIdxFile(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<IdxArray> labels = ReadIdxFile(labels_path);
  if (!labels.ok()) return labels.status();
  return IdxToDataset(*images, *labels, images_path, labels_path);
}

}  // namespace tessera::client
