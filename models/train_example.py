"""Train the shipped example model: a tiny MLP, deterministic, numpy only.

Task (synthetic, fixed seed): a "position health" score from four features in [-1, 1]:
    y = 0.8*x0 - 0.5*x1 + 0.3*x2*x3 + 0.2
Architecture: 4 -> 8 (ReLU) -> 1, full-batch gradient descent. Exported with plain
Gemm/Relu operators (opset 13), which both onnxruntime and EZKL support.

    python models/train_example.py            # rewrites models/example_mlp.onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 7
OUT = Path(__file__).resolve().parent / "example_mlp.onnx"


def target(x: np.ndarray) -> np.ndarray:
    return 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2] * x[:, 3] + 0.2


def train() -> tuple[list[np.ndarray], float]:
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1, 1, size=(2048, 4))
    y = target(x)[:, None]
    w1 = rng.normal(0, 0.5, size=(4, 8))
    b1 = np.zeros(8)
    w2 = rng.normal(0, 0.5, size=(8, 1))
    b2 = np.zeros(1)
    lr = 0.1
    for _ in range(3000):
        h = np.maximum(x @ w1 + b1, 0)
        pred = h @ w2 + b2
        grad = 2 * (pred - y) / len(x)
        gw2 = h.T @ grad
        gb2 = grad.sum(0)
        gh = grad @ w2.T * (h > 0)
        gw1 = x.T @ gh
        gb1 = gh.sum(0)
        w1 -= lr * gw1
        b1 -= lr * gb1
        w2 -= lr * gw2
        b2 -= lr * gb2
    xt = rng.uniform(-1, 1, size=(512, 4))
    ht = np.maximum(xt @ w1 + b1, 0)
    mse = float(np.mean((ht @ w2 + b2 - target(xt)[:, None]) ** 2))
    return [w1, b1, w2, b2], mse


def export(params: list[np.ndarray], path: Path) -> None:
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "example_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="oracle-example"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


if __name__ == "__main__":
    weights, test_mse = train()
    export(weights, OUT)
    print(f"wrote {OUT} (held-out MSE {test_mse:.5f})")
