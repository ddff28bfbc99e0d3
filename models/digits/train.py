"""Train the flagship model: handwritten digits, 8x8 pixels -> 10 logits, deterministic.

Data: scikit-learn's bundled copy of the UCI optical digits (``sklearn.datasets.load_digits``:
1,797 images of 8x8 pixels with grey levels 0..16, read from a file inside the package, no
download). Pixels are divided by 16, so inputs lie in [0, 1]. A fixed permutation (seed
``SEED``) splits them into 1,437 training and 360 held-out images.

Architecture: 64 -> 32 (ReLU) -> 10 logits (no softmax in the graph), 2,410 parameters
(the 4-8-1 example has 49), trained by full-batch Adam on softmax cross-entropy with a
little L2, which keeps the weights and logits small for the circuit. Exported with plain
Gemm/Relu operators (opset 13), which both onnxruntime and EZKL support.

scikit-learn is needed only to train (``pip install -e .[train]``); the node, the tests and
the benchmark read the checked-in files:
    digits_mlp.onnx     the model
    calibration.json    32 training images, the EZKL calibration input
    held_out.json       the 360 held-out images (raw grey levels) and their labels

    python models/digits/train.py     # rewrites the three files (the same bytes on the same CPU)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 88
HERE = Path(__file__).resolve().parent
ONNX_OUT = HERE / "digits_mlp.onnx"
CALIBRATION_OUT = HERE / "calibration.json"
HELD_OUT = HERE / "held_out.json"

N_PIXELS = 64
HIDDEN = 32
N_CLASSES = 10
GREY_LEVELS = 16.0
N_HELD_OUT = 360
N_CALIBRATION = 32
EPOCHS = 1500
LEARNING_RATE = 0.01
L2 = 1e-3

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Dataset:
    pixels: npt.NDArray[np.int64]  # (n, 64) grey levels 0..16
    y: npt.NDArray[np.int64]  # (n,) digit

    @property
    def x(self) -> Array:
        return self.pixels.astype(np.float64) / GREY_LEVELS


def split() -> tuple[Dataset, Dataset]:
    from sklearn.datasets import load_digits  # training-only dependency

    digits = load_digits()
    pixels = digits.data.astype(np.int64)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    train_idx, held_idx = order[:-N_HELD_OUT], order[-N_HELD_OUT:]
    return Dataset(pixels[train_idx], y[train_idx]), Dataset(pixels[held_idx], y[held_idx])


def forward(params: list[Array], x: Array) -> Array:
    w1, b1, w2, b2 = params
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2


def accuracy(logits: Array, y: npt.NDArray[np.int64]) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def train(data: Dataset) -> list[Array]:
    rng = np.random.default_rng(SEED)
    params = [
        rng.normal(0, np.sqrt(2 / N_PIXELS), size=(N_PIXELS, HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0, np.sqrt(2 / HIDDEN), size=(HIDDEN, N_CLASSES)),
        np.zeros(N_CLASSES),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    x = data.x
    onehot = np.eye(N_CLASSES)[data.y]
    for step in range(1, EPOCHS + 1):
        w1, b1, w2, b2 = params
        pre = x @ w1 + b1
        h = np.maximum(pre, 0)
        logits = h @ w2 + b2
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        grad = (z / z.sum(axis=1, keepdims=True) - onehot) / len(x)
        gh = grad @ w2.T * (pre > 0)
        grads = [x.T @ gh + L2 * w1, gh.sum(0), h.T @ grad + L2 * w2, grad.sum(0)]
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            m_hat = m[i] / (1 - 0.9**step)
            v_hat = v[i] / (1 - 0.999**step)
            params[i] = params[i] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)
    return params


def export(params: list[Array], path: Path) -> None:
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, N_PIXELS])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, N_CLASSES])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="oracle-digits"
    )
    model.ir_version = 8
    model.doc_string = "8x8 handwritten digit, pixels / 16 in [0, 1] -> 10 logits"
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def write_calibration(data: Dataset, path: Path) -> None:
    rows = data.x[:N_CALIBRATION]
    flat = [round(float(v), 4) for v in rows.reshape(-1)]
    path.write_text(json.dumps({"input_data": [flat]}) + "\n")


def write_held_out(data: Dataset, path: Path) -> None:
    body = {
        "scale": GREY_LEVELS,
        "pixels": data.pixels.tolist(),
        "labels": data.y.tolist(),
    }
    path.write_text(json.dumps(body, separators=(",", ":")) + "\n")


def main() -> None:
    training, held = split()
    params = train(training)
    export(params, ONNX_OUT)
    write_calibration(training, CALIBRATION_OUT)
    write_held_out(held, HELD_OUT)
    logits = forward(params, held.x)
    n_params = sum(p.size for p in params)
    print(f"wrote {ONNX_OUT.name}, {CALIBRATION_OUT.name}, {HELD_OUT.name} ({n_params} params)")
    print(f"training accuracy {accuracy(forward(params, training.x), training.y):.4f}")
    print(f"held-out accuracy {accuracy(logits, held.y):.4f} on {len(held.y)} images")
    print(f"largest |logit| on held-out {float(np.abs(logits).max()):.3f}")


if __name__ == "__main__":
    main()
