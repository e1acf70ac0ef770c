// Private to secagg/: the length-prefixed byte strings the protocol signs, hashes and
// encrypts, and the little-endian word encoding of vectors. Header-only and small.
#ifndef TESSERA_SECAGG_INTERNAL_WIRE_H_
#define TESSERA_SECAGG_INTERNAL_WIRE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::secagg::internal {

// Appends a 4-byte little-endian integer.
inline void AppendUint32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

// Appends `field` preceded by its length (4 bytes, little-endian).
inline void AppendField(std::string* out, std::string_view field) {
  AppendUint32(out, static_cast<uint32_t>(field.size()));
  out->append(field.data(), field.size());
}

// Reads what AppendField wrote, front to back. Views point into the parsed buffer.
class FieldReader {
 public:
  explicit FieldReader(std::string_view data) : data_(data) {}

  std::optional<std::string_view> Next() {
    if (data_.size() < 4) return std::nullopt;
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size |= uint32_t{static_cast<uint8_t>(data_[i])} << (8 * i);
    data_.remove_prefix(4);
    if (data_.size() < size) return std::nullopt;
    std::string_view field = data_.substr(0, size);
    data_.remove_prefix(size);
    return field;
  }
  bool AtEnd() const { return data_.empty(); }

 private:
  std::string_view data_;
};

// Appends a length-delimited protobuf field's tag and length, for `size` bytes the caller
// appends next.
inline void AppendProtoFieldHeader(int field_number, size_t size, std::string* out) {
  for (uint64_t value :
       {(static_cast<uint64_t>(field_number) << 3) | 2, static_cast<uint64_t>(size)}) {
    while (value >= 0x80) {
      out->push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    out->push_back(static_cast<char>(value));
  }
}

// Appends a length-delimited protobuf field (its tag, a varint length, the bytes): how a
// bytes, string or message field is written, so that messages can be assembled from bytes
// kept serialized.
inline void AppendProtoField(int field_number, std::string_view bytes, std::string* out) {
  AppendProtoFieldHeader(field_number, bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

// Appends `words` as little-endian bytes to `out`.
inline void AppendWordsAsBytes(std::span<const uint32_t> words, std::string* out) {
  const size_t start = out->size();
  out->resize(start + words.size() * 4);
  char* at = out->data() + start;
  if constexpr (std::endian::native == std::endian::little) {
    // The words' own bytes (a model-sized vector: one copy, not a loop over its bytes).
    if (!words.empty()) std::memcpy(at, words.data(), words.size() * 4);
  } else {
    for (size_t i = 0; i < words.size(); ++i) {
      for (int b = 0; b < 4; ++b) at[4 * i + b] = static_cast<char>(words[i] >> (8 * b));
    }
  }
}

// `words` as little-endian bytes.
inline std::string WordsToBytes(std::span<const uint32_t> words) {
  std::string out;
  AppendWordsAsBytes(words, &out);
  return out;
}

// The word whose little-endian bytes start at `at` (4 of them).
inline uint32_t LoadLittleEndianWord(const char* at) {
  uint32_t word = 0;
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(&word, at, 4);
  } else {
    for (int b = 0; b < 4; ++b) word |= uint32_t{static_cast<uint8_t>(at[b])} << (8 * b);
  }
  return word;
}

// Little-endian bytes (a multiple of 4 long) into `out` (bytes.size() / 4 words).
inline void BytesToWords(std::string_view bytes, std::span<uint32_t> out) {
  if constexpr (std::endian::native == std::endian::little) {
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
  } else {
    for (size_t i = 0; i < out.size(); ++i) out[i] = LoadLittleEndianWord(bytes.data() + 4 * i);
  }
}

// Adds little-endian bytes (a multiple of 4 long), read as words, into `sum`
// (bytes.size() / 4 words), modulo 2^32: a masked input into the running sum, without a
// copy of it as words.
inline void AddBytesAsWords(std::string_view bytes, std::span<uint32_t> sum) {
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += LoadLittleEndianWord(bytes.data() + 4 * i);
}

}  // namespace tessera::secagg::internal

#endif  // TESSERA_SECAGG_INTERNAL_WIRE_H_
