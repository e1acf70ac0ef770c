// Scoring rows with an exported model file, locally (`tessera predict`): no network, no
// coordinator. Reads the ONNX files and the JSON files `tessera models export` writes;
// csv coefficient tables are refused (export onnx or json to score).
//
// ONNX files are run by a small interpreter of the standard operators the exporter uses
// (Sub, Div, Add, Gemm, MatMul, Relu, Sigmoid, Softmax over float tensors of rank 1 and 2,
// numpy-style broadcasting of the second operand), computing in double. A JSON file is
// turned into the same ONNX graph first, so both paths run the same code. The input
// columns, label and output column names come from the file (the ONNX metadata_props
// "tessera.*" that the exporter writes).
//
// A loaded Scorer is immutable; Score is thread-safe.
#ifndef TESSERA_MODEL_EXPORT_SCORER_H_
#define TESSERA_MODEL_EXPORT_SCORER_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::model_export {

class Scorer {
 public:
  // From a file's bytes: JSON when the first non-blank character is '{', ONNX otherwise.
  // INVALID_ARGUMENT prefixed with `source_name` for a file that does not parse, a graph
  // with an operator outside the list above, a tensor of another type or rank, inputs not
  // computed by an earlier node, or without the tessera metadata (features, output
  // columns).
  static absl::StatusOr<std::unique_ptr<Scorer>> Load(const std::string& bytes,
                                                      const std::string& source_name);
  virtual ~Scorer() = default;

  // The CSV columns the model takes, in order.
  virtual const std::vector<std::string>& features() const = 0;
  // The label column (empty if none), and the event column of a Cox model.
  virtual const std::string& label() const = 0;
  virtual const std::string& event() const = 0;
  // ModelSpec.Kind name: "LOGISTIC_REGRESSION", ..., "COX_PH".
  virtual const std::string& kind() const = 0;
  // Names of the output's columns.
  virtual const std::vector<std::string>& output_columns() const = 0;

  // Outputs for `num_rows` rows of raw features (row-major, num_rows x features().size()):
  // row-major num_rows x output_columns().size(). INVALID_ARGUMENT if the sizes do not
  // match or the graph's shapes do not work out.
  virtual absl::StatusOr<std::vector<double>> Score(std::span<const double> rows,
                                                    size_t num_rows) const = 0;
};

}  // namespace tessera::model_export

#endif  // TESSERA_MODEL_EXPORT_SCORER_H_
