// Protobuf wire bytes written by hand, for messages assembled from parts kept serialized
// (setup_bytes.h, work_wire.h, store_records.h): varints and length-delimited field
// headers, as protobuf writes them. Pure functions.
#ifndef TESSERA_COORDINATOR_INTERNAL_WIRE_FIELDS_H_
#define TESSERA_COORDINATOR_INTERNAL_WIRE_FIELDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::coordinator::internal {

// Appends `value` as a protobuf varint (a length, or a varint field's value after its tag).
inline void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Appends a length-delimited field's tag (wire type 2) and `length`.
inline void AppendFieldHeader(int field_number, size_t length, std::string* out) {
  AppendVarint((static_cast<uint64_t>(field_number) << 3) | 2, out);
  AppendVarint(length, out);
}

// Appends a length-delimited protobuf field (its tag, a varint length, `bytes`) to `out`:
// how a message kept serialized is put into another's wire bytes.
inline void AppendMessageField(int field_number, std::string_view bytes, std::string* out) {
  AppendFieldHeader(field_number, bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

}  // namespace tessera::coordinator::internal

#endif  // TESSERA_COORDINATOR_INTERNAL_WIRE_FIELDS_H_
