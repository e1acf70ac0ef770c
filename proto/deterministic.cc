#include "proto/deterministic.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace tessera::proto {

absl::StatusOr<std::string> DeterministicBytes(const google::protobuf::MessageLite& message,
                                               std::string_view what) {
  std::string bytes;
  bool written = false;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    written = message.SerializeToCodedStream(&coded) && !coded.HadError();
  }  // the stream's destruction leaves exactly the bytes written
  if (!written) return absl::InternalError(absl::StrCat("cannot serialise ", std::string(what)));
  return bytes;
}

}  // namespace tessera::proto
