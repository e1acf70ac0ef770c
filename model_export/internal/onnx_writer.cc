#include "model_export/internal/onnx_writer.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "onnx/onnx_pb.h"
#include "proto/deterministic.h"
#include "proto/task.pb.h"

namespace tessera::model_export::internal {
namespace {

// A float tensor initializer; raw_data is little-endian float32 (the ONNX convention).
void AddFloatTensor(onnx::GraphProto* graph, const std::string& name,
                    const std::vector<int64_t>& dims, const std::vector<float>& values) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  std::string raw(values.size() * sizeof(float), '\0');
  static_assert(sizeof(float) == 4);
  // x86-64 and aarch64 are little-endian, like ONNX's raw_data.
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  t->set_raw_data(std::move(raw));
}

void SetMatrixType(onnx::ValueInfoProto* value, const std::string& name, int64_t columns) {
  value->set_name(name);
  onnx::TypeProto::Tensor* tensor = value->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  tensor->mutable_shape()->add_dim()->set_dim_param("N");
  tensor->mutable_shape()->add_dim()->set_dim_value(columns);
}

onnx::NodeProto* AddNode(onnx::GraphProto* graph, const std::string& op,
                         const std::vector<std::string>& inputs, const std::string& output) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(absl::StrCat(op, "_", graph->node_size()));
  for (const std::string& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

void AddIntAttribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void AddMetadata(onnx::ModelProto* onnx_model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = onnx_model->add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

void AddLayers(const v1::ExportedModel& model, onnx::GraphProto* graph) {
  std::string current = "standardized";
  for (int l = 0; l < model.layers_size(); ++l) {
    const v1::ExportedLayer& layer = model.layers(l);
    const bool last = l + 1 == model.layers_size();
    const bool identity = layer.activation() == "identity";
    const std::string w = absl::StrCat("W", l), b = absl::StrCat("b", l);
    AddFloatTensor(graph, w, {layer.outputs(), layer.inputs()},
                   std::vector<float>(layer.weights().begin(), layer.weights().end()));
    std::vector<std::string> inputs = {current, w};
    if (!layer.bias().empty()) {
      AddFloatTensor(graph, b, {layer.outputs()},
                     std::vector<float>(layer.bias().begin(), layer.bias().end()));
      inputs.push_back(b);
    }
    const std::string z = last && identity ? model.output() : absl::StrCat("z", l);
    // Y = X W^T + b: W is stored outputs x inputs, as in the checkpoint.
    AddIntAttribute(AddNode(graph, "Gemm", inputs, z), "transB", 1);
    current = z;
    if (identity) continue;
    const std::string h = last ? model.output() : absl::StrCat("h", l);
    if (layer.activation() == "relu") {
      AddNode(graph, "Relu", {current}, h);
    } else if (layer.activation() == "sigmoid") {
      AddNode(graph, "Sigmoid", {current}, h);
    } else {
      AddIntAttribute(AddNode(graph, "Softmax", {current}, h), "axis", 1);
    }
    current = h;
  }
}

}  // namespace

absl::StatusOr<std::string> WriteOnnx(const v1::ExportedModel& model) {
  onnx::ModelProto onnx_model;
  onnx_model.set_ir_version(kOnnxIrVersion);
  onnx_model.set_producer_name("tessera");
  onnx_model.set_producer_version(model.producer_version());
  onnx_model.set_model_version(1);
  onnx_model.set_doc_string(absl::StrCat(
      v1::ModelSpec::Kind_Name(model.kind()), " of ", model.task_id(), " round ", model.round(),
      ": input '", kOnnxInput, "' is the raw feature columns in task order (",
      model.features_size(), " floats per row); standardised inside the graph; output '",
      model.output(), "'"));
  onnx::OperatorSetIdProto* opset = onnx_model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  AddMetadata(&onnx_model, "tessera.kind", v1::ModelSpec::Kind_Name(model.kind()));
  AddMetadata(&onnx_model, "tessera.task_id", model.task_id());
  AddMetadata(&onnx_model, "tessera.round", absl::StrCat(model.round()));
  AddMetadata(&onnx_model, "tessera.model_sha256", model.model_sha256());
  AddMetadata(&onnx_model, "tessera.spec_sha256", model.spec_sha256());
  AddMetadata(&onnx_model, "tessera.features", absl::StrJoin(model.features(), ","));
  AddMetadata(&onnx_model, "tessera.label", model.label());
  AddMetadata(&onnx_model, "tessera.event", model.event());
  AddMetadata(&onnx_model, "tessera.output_columns", absl::StrJoin(model.output_columns(), ","));

  onnx::GraphProto* graph = onnx_model.mutable_graph();
  graph->set_name(absl::StrCat("tessera_", model.task_id()));
  SetMatrixType(graph->add_input(), kOnnxInput, model.features_size());
  SetMatrixType(graph->add_output(), model.output(), model.output_columns_size());
  AddFloatTensor(graph, "mean", {model.features_size()},
                 std::vector<float>(model.mean().begin(), model.mean().end()));
  AddFloatTensor(graph, "stddev", {model.features_size()},
                 std::vector<float>(model.stddev().begin(), model.stddev().end()));
  AddNode(graph, "Sub", {kOnnxInput, "mean"}, "centered");
  AddNode(graph, "Div", {"centered", "stddev"}, "standardized");
  AddLayers(model, graph);

  return proto::DeterministicBytes(onnx_model, "the ONNX model");
}

}  // namespace tessera::model_export::internal
