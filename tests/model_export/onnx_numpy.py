#!/usr/bin/python3
"""An independent scorer for the ONNX files `tessera models export` writes.

Run with Debian's /usr/bin/python3 (python3-onnx 1.12, python3-numpy). It checks the model
with onnx.checker.check_model (full_check: shape inference too), then evaluates the graph
with numpy's own implementation of the standard operators (Sub, Div, Add, Gemm, MatMul,
Relu, Sigmoid, Softmax), not with Tessera's C++ code, on the rows of a CSV file (columns
picked by the graph's input, whose feature names come from the model's metadata).

usage: onnx_numpy.py MODEL.onnx DATA.csv [ROWS.txt]
  ROWS.txt: optional 0-based data-row indices to keep (a reference split's test rows).
Prints one JSON object: {"rows", "outputs" (the output rows), "accuracy" (classifiers, when
the label column is present), "rmse" (regression), "ir_version", "opset", "ops"}.
"""
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper

ALLOWED = {"Sub", "Div", "Add", "Gemm", "MatMul", "Relu", "Sigmoid", "Softmax"}


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def run(model, x):
    values = {i.name: numpy_helper.to_array(i).astype(np.float64)
              for i in model.graph.initializer}
    values[model.graph.input[0].name] = x.astype(np.float32).astype(np.float64)
    for node in model.graph.node:
        ins = [values[n] for n in node.input if n]
        op = node.op_type
        if op not in ALLOWED:
            raise SystemExit("operator %s is not a standard inference operator here" % op)
        if op == "Sub":
            y = ins[0] - ins[1]
        elif op == "Div":
            y = ins[0] / ins[1]
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "MatMul":
            y = ins[0] @ ins[1]
        elif op == "Gemm":
            a = ins[0].T if attr(node, "transA", 0) else ins[0]
            b = ins[1].T if attr(node, "transB", 0) else ins[1]
            y = attr(node, "alpha", 1.0) * (a @ b)
            if len(ins) > 2:
                y = y + attr(node, "beta", 1.0) * ins[2]
        elif op == "Relu":
            y = np.maximum(ins[0], 0.0)
        elif op == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-ins[0]))
        else:  # Softmax
            z = ins[0] - ins[0].max(axis=attr(node, "axis", -1), keepdims=True)
            e = np.exp(z)
            y = e / e.sum(axis=attr(node, "axis", -1), keepdims=True)
        values[node.output[0]] = y
    return values[model.graph.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    features = meta["tessera.features"].split(",")
    with open(sys.argv[2]) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
    if len(sys.argv) > 3:
        rows = [int(line) for line in open(sys.argv[3]) if line.strip()]
        data = data[rows]
    x = data[:, [header.index(name) for name in features]]
    y = run(model, x)
    out = {"rows": int(len(data)), "outputs": y.tolist(), "ir_version": model.ir_version,
           "opset": [o.version for o in model.opset_import],
           "ops": sorted({n.op_type for n in model.graph.node})}
    label = meta.get("tessera.label", "")
    kind = meta.get("tessera.kind", "")
    if label in header:
        t = data[:, header.index(label)]
        if kind == "LOGISTIC_REGRESSION":
            out["accuracy"] = float(np.mean((y[:, 0] >= 0.5) == (t == 1)))
        elif y.shape[1] >= 2:
            out["accuracy"] = float(np.mean(np.argmax(y, axis=1) == t))
        elif kind in ("LINEAR_REGRESSION", "MLP"):
            out["rmse"] = float(np.sqrt(np.mean((y[:, 0] - t) ** 2)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
