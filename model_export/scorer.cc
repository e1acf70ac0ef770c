#include "model_export/scorer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"
#include "model_export/internal/model_check.h"
#include "model_export/internal/onnx_writer.h"
#include "onnx/onnx_pb.h"
#include "proto/model_export.pb.h"

namespace tessera::model_export {
namespace {

// A float tensor of rank 1 or 2, held in double.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
  int64_t rows() const { return shape.size() == 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.back(); }
};

absl::StatusOr<Tensor> FromInitializer(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto::FLOAT) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", t.name(), "' is not float"));
  }
  if (t.dims_size() < 1 || t.dims_size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("initializer '", t.name(), "' has rank ",
                                                   t.dims_size(), " (1 or 2 supported)"));
  }
  Tensor out;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || d > (int64_t{1} << 31)) {
      return absl::InvalidArgumentError(absl::StrCat("initializer '", t.name(), "': bad shape"));
    }
    out.shape.push_back(d);
    n *= d;
  }
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != static_cast<size_t>(n) * sizeof(float)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "initializer '", t.name(), "': ", t.raw_data().size(), " bytes for ", n, " floats"));
    }
    std::vector<float> f(static_cast<size_t>(n));
    if (n > 0) std::memcpy(f.data(), t.raw_data().data(), t.raw_data().size());
    out.data.assign(f.begin(), f.end());
  } else {
    if (t.float_data_size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", t.name(), "': ", t.float_data_size(), " values for ", n));
    }
    out.data.assign(t.float_data().begin(), t.float_data().end());
  }
  return out;
}

int64_t IntAttribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return a.i();
  }
  return fallback;
}

double FloatAttribute(const onnx::NodeProto& node, const std::string& name, double fallback) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.name() == name) return a.f();
  }
  return fallback;
}

// a (op) b with b broadcast over a's rows (b of shape [C], [1, C] or a's shape).
template <typename Op>
absl::StatusOr<Tensor> Broadcast(const Tensor& a, const Tensor& b, Op op) {
  const bool same = a.shape == b.shape;
  if (!same && !(b.rows() == 1 && b.cols() == a.cols())) {
    return absl::InvalidArgumentError("operands cannot be broadcast");
  }
  Tensor out = a;
  const int64_t c = a.cols();
  for (size_t i = 0; i < out.data.size(); ++i) {
    out.data[i] = op(a.data[i], same ? b.data[i] : b.data[i % static_cast<size_t>(c)]);
  }
  return out;
}

// Y = alpha * A' B' + beta * C (A' = A or A^T, B' likewise); C broadcast.
absl::StatusOr<Tensor> Gemm(const Tensor& a, const Tensor& b, const Tensor* c, bool trans_a,
                            bool trans_b, double alpha, double beta) {
  if (a.shape.size() != 2 || b.shape.size() != 2) {
    return absl::InvalidArgumentError("Gemm/MatMul takes matrices");
  }
  const int64_t m = trans_a ? a.shape[1] : a.shape[0], k = trans_a ? a.shape[0] : a.shape[1];
  const int64_t kb = trans_b ? b.shape[1] : b.shape[0], n = trans_b ? b.shape[0] : b.shape[1];
  if (k != kb) return absl::InvalidArgumentError("Gemm/MatMul: inner dimensions differ");
  Tensor y{{m, n}, std::vector<double>(static_cast<size_t>(m * n), 0.0)};
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = trans_a ? a.data[p * a.shape[1] + i] : a.data[i * a.shape[1] + p];
        const double bv = trans_b ? b.data[j * b.shape[1] + p] : b.data[p * b.shape[1] + j];
        s += av * bv;
      }
      y.data[i * n + j] = alpha * s;
    }
  }
  if (c == nullptr) return y;
  ASSIGN_OR_RETURN(Tensor bc,
                   Broadcast(y, *c, [beta](double u, double v) { return u + beta * v; }));
  return bc;
}

Tensor Map(Tensor t, double (*f)(double)) {
  for (double& v : t.data) v = f(v);
  return t;
}

Tensor SoftmaxRows(Tensor t) {
  const int64_t c = t.cols();
  for (int64_t r = 0; r < t.rows(); ++r) {
    double* row = t.data.data() + r * c;
    const double m = *std::max_element(row, row + c);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += (row[j] = std::exp(row[j] - m));
    for (int64_t j = 0; j < c; ++j) row[j] /= sum;
  }
  return t;
}

double Relu(double v) { return v > 0 ? v : 0.0; }
// As the client's logistic regression: no overflow for large |z|.
double Sigmoid(double z) {
  const double e = std::exp(-std::abs(z));
  return z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

class OnnxScorer final : public Scorer {
 public:
  absl::Status Init(const std::string& bytes) {
    if (!model_.ParseFromString(bytes)) return absl::InvalidArgumentError("not an ONNX model");
    const onnx::GraphProto& g = model_.graph();
    for (const onnx::TensorProto& t : g.initializer()) {
      ASSIGN_OR_RETURN(Tensor tensor, FromInitializer(t));
      initializers_[t.name()] = std::move(tensor);
    }
    for (const onnx::ValueInfoProto& in : g.input()) {
      if (!initializers_.contains(in.name())) {
        if (!input_.empty()) return absl::InvalidArgumentError("the graph has several inputs");
        input_ = in.name();
      }
    }
    if (input_.empty() || g.output_size() != 1) {
      return absl::InvalidArgumentError("the graph needs one input and one output");
    }
    output_ = g.output(0).name();
    std::map<std::string, std::string> meta;
    for (const auto& e : model_.metadata_props()) meta[e.key()] = e.value();
    if (meta["tessera.features"].empty() || meta["tessera.output_columns"].empty()) {
      return absl::InvalidArgumentError(
          "the ONNX model has no tessera.features / tessera.output_columns metadata (not "
          "written by tessera models export)");
    }
    features_ = absl::StrSplit(meta["tessera.features"], ',');
    output_columns_ = absl::StrSplit(meta["tessera.output_columns"], ',');
    label_ = meta["tessera.label"];
    event_ = meta["tessera.event"];
    kind_ = meta["tessera.kind"];
    for (const onnx::NodeProto& node : g.node()) {
      static const char* kOps[] = {"Sub",    "Div",  "Add",     "Gemm",
                                   "MatMul", "Relu", "Sigmoid", "Softmax"};
      if (std::find(std::begin(kOps), std::end(kOps), node.op_type()) == std::end(kOps)) {
        return absl::InvalidArgumentError(
            absl::StrCat("operator '", node.op_type().substr(0, 40), "' is not supported"));
      }
    }
    return absl::OkStatus();
  }

  const std::vector<std::string>& features() const override { return features_; }
  const std::string& label() const override { return label_; }
  const std::string& event() const override { return event_; }
  const std::string& kind() const override { return kind_; }
  const std::vector<std::string>& output_columns() const override { return output_columns_; }

  absl::StatusOr<std::vector<double>> Score(std::span<const double> rows,
                                            size_t num_rows) const override {
    const int64_t f = static_cast<int64_t>(features_.size());
    if (rows.size() != num_rows * features_.size()) {
      return absl::InvalidArgumentError("rows do not have one value per feature");
    }
    std::map<std::string, Tensor> values;
    values[input_] = Tensor{{static_cast<int64_t>(num_rows), f}, {rows.begin(), rows.end()}};
    for (const onnx::NodeProto& node : model_.graph().node()) {
      ASSIGN_OR_RETURN(Tensor out, Run(node, values));
      if (node.output_size() != 1) return absl::InvalidArgumentError("a node has several outputs");
      values[node.output(0)] = std::move(out);
    }
    auto it = values.find(output_);
    if (it == values.end()) return absl::InvalidArgumentError("no node computes the output");
    if (it->second.shape.size() != 2 || it->second.rows() != static_cast<int64_t>(num_rows) ||
        it->second.cols() != static_cast<int64_t>(output_columns_.size())) {
      return absl::InvalidArgumentError("the output's shape does not match its columns");
    }
    return std::move(it->second.data);
  }

 private:
  absl::StatusOr<const Tensor*> Input(const onnx::NodeProto& node, int i,
                                      const std::map<std::string, Tensor>& values) const {
    if (i >= node.input_size()) {
      return absl::InvalidArgumentError(absl::StrCat(node.op_type(), " lacks input ", i));
    }
    if (auto it = values.find(node.input(i)); it != values.end()) return &it->second;
    if (auto it = initializers_.find(node.input(i)); it != initializers_.end()) return &it->second;
    return absl::InvalidArgumentError(
        absl::StrCat(node.op_type(), ": input '", node.input(i), "' is not computed before it"));
  }

  absl::StatusOr<Tensor> Run(const onnx::NodeProto& node,
                             const std::map<std::string, Tensor>& values) const {
    const std::string& op = node.op_type();
    ASSIGN_OR_RETURN(const Tensor* a, Input(node, 0, values));
    if (op == "Relu") return Map(*a, Relu);
    if (op == "Sigmoid") return Map(*a, Sigmoid);
    if (op == "Softmax") {
      const int64_t axis = IntAttribute(node, "axis", -1);
      if (a->shape.size() != 2 || (axis != 1 && axis != -1)) {
        return absl::InvalidArgumentError("Softmax over the last axis of a matrix only");
      }
      return SoftmaxRows(*a);
    }
    ASSIGN_OR_RETURN(const Tensor* b, Input(node, 1, values));
    if (op == "Sub") return Broadcast(*a, *b, [](double u, double v) { return u - v; });
    if (op == "Div") return Broadcast(*a, *b, [](double u, double v) { return u / v; });
    if (op == "Add") return Broadcast(*a, *b, [](double u, double v) { return u + v; });
    if (op == "MatMul") return Gemm(*a, *b, nullptr, false, false, 1, 1);
    const Tensor* c = nullptr;
    if (node.input_size() > 2 && !node.input(2).empty()) {
      ASSIGN_OR_RETURN(c, Input(node, 2, values));
    }
    return Gemm(*a, *b, c, IntAttribute(node, "transA", 0) != 0,
                IntAttribute(node, "transB", 0) != 0, FloatAttribute(node, "alpha", 1.0),
                FloatAttribute(node, "beta", 1.0));
  }

  onnx::ModelProto model_;
  std::map<std::string, Tensor> initializers_;
  std::string input_, output_, label_, event_, kind_;
  std::vector<std::string> features_, output_columns_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Scorer>> Scorer::Load(const std::string& bytes,
                                                     const std::string& source_name) {
  auto prefixed = [&](const absl::Status& st) {
    return absl::Status(st.code(), absl::StrCat(source_name, ": ", st.message()));
  };
  std::string onnx_bytes = bytes;
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && bytes[first] == '{') {
    v1::ExportedModel model;
    google::protobuf::util::JsonParseOptions options;
    auto parsed = google::protobuf::util::JsonStringToMessage(bytes, &model, options);
    if (!parsed.ok()) {
      return prefixed(absl::InvalidArgumentError(
          absl::StrCat("not a model JSON file: ", std::string(parsed.message()).substr(0, 200))));
    }
    if (absl::Status st = internal::CheckModel(model); !st.ok()) return prefixed(st);
    auto written = internal::WriteOnnx(model);
    if (!written.ok()) return prefixed(written.status());
    onnx_bytes = std::move(*written);
  } else if (bytes.rfind("output,feature,", 0) == 0) {
    return prefixed(absl::InvalidArgumentError(
        "a csv coefficient table cannot be scored: export the model as onnx or json"));
  }
  auto scorer = std::make_unique<OnnxScorer>();
  if (absl::Status st = scorer->Init(onnx_bytes); !st.ok()) return prefixed(st);
  return scorer;
}

}  // namespace tessera::model_export
