// Row gathering for the double-precision models: the rows of a mini-batch are copied
// into a buffer of at most kGatherRows rows, so that a call over any number of rows uses
// bounded memory and Eigen still sees a dense row-major block. Includes Eigen: .cc only.
#ifndef TESSERA_CLIENT_INTERNAL_EIGEN_ROWS_H_
#define TESSERA_CLIENT_INTERNAL_EIGEN_ROWS_H_

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "Eigen/Core"
#include "client/dataset.h"
#include "client/internal/check.h"

namespace tessera::client::internal {

using RowMajorMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMajorMapXd = Eigen::Map<const RowMajorMatrixXd>;
using RowMajorMapXd = Eigen::Map<RowMajorMatrixXd>;

inline constexpr size_t kGatherRows = 256;

// Calls fn(x, chunk) for consecutive chunks of `rows`: x is the m x d block of those rows
// (m = chunk.size() <= kGatherRows), chunk the row indices it holds.
template <typename Fn>
void ForEachChunk(const Dataset& data, std::span<const size_t> rows, Fn&& fn) {
  const size_t d = data.num_features;
  const size_t n = rows.size();
  std::vector<double> buffer(std::min(n, kGatherRows) * d);
  for (size_t start = 0; start < n; start += kGatherRows) {
    const size_t m = std::min(kGatherRows, n - start);
    const std::span<const size_t> chunk = rows.subspan(start, m);
    for (size_t i = 0; i < m; ++i) {
      TESSERA_CLIENT_CHECK(chunk[i] < data.num_rows);
      if (d > 0) std::memcpy(&buffer[i * d], &data.x[chunk[i] * d], d * sizeof(double));
    }
    const ConstRowMajorMapXd x(buffer.data(), static_cast<Eigen::Index>(m),
                               static_cast<Eigen::Index>(d));
    fn(x, chunk);
  }
}

// The whole dataset as one block, without copying.
inline ConstRowMajorMapXd AllRows(const Dataset& data) {
  return ConstRowMajorMapXd(data.x.data(), static_cast<Eigen::Index>(data.num_rows),
                            static_cast<Eigen::Index>(data.num_features));
}

}  // namespace tessera::client::internal

#endif  // TESSERA_CLIENT_INTERNAL_EIGEN_ROWS_H_
