// Fuzz target: the IDX reader (client/idx.h). The first byte picks what is read:
//   0: the rest as one IDX file (ParseIdx);
//   1: an images file (a 2-byte-length chunk) and a labels file (the rest), as a dataset
//      (ParseIdx twice, then IdxToDataset);
//   2: the rest as a file on disk, gzip-compressed or not (ReadIdxFile, through a memfd).
// An accepted array must hold exactly the product of its dimensions.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "client/idx.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void CheckShape(const tessera::client::IdxArray& array) {
  uint64_t count = 1;
  for (uint32_t d : array.dims) count *= d;
  if (array.dims.empty() || array.dims.size() > 4 || count != array.values.size()) std::abort();
}

void ReadThroughFile(std::string_view bytes) {
  const int fd = memfd_create("idx-fuzz", 0);
  if (fd < 0) return;
  if (write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) {
    auto array = tessera::client::ReadIdxFile("/proc/self/fd/" + std::to_string(fd));
    if (array.ok()) CheckShape(*array);
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera;
  fuzz::FuzzInput in(data, size);
  switch (in.Byte() % 3) {
    case 0: {
      auto array = client::ParseIdx(in.Rest(), "fuzz-idx1-ubyte");
      if (array.ok()) CheckShape(*array);
      break;
    }
    case 1: {
      auto images = client::ParseIdx(in.Chunk16(), "images-idx3-ubyte");
      auto labels = client::ParseIdx(in.Rest(), "labels-idx1-ubyte");
      if (!images.ok() || !labels.ok()) break;
      CheckShape(*images);
      CheckShape(*labels);
      (void)client::IdxToDataset(*images, *labels, "images", "labels");
      break;
    }
    default:
      ReadThroughFile(in.Rest());
  }
  return 0;
}
