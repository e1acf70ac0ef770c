// Fuzz target: the strict CSV reader (client/csv.h) on arbitrary text. A table it accepts
// must be rectangular, with a value per cell, every value finite.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "client/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto table = tessera::client::ParseCsv(text, "fuzz.csv");
  if (!table.ok()) return 0;
  if (table->header.empty() || table->num_rows == 0) std::abort();
  if (table->values.size() != table->num_rows * table->header.size()) std::abort();
  for (double v : table->values) {
    if (!std::isfinite(v)) std::abort();
  }
  return 0;
}
