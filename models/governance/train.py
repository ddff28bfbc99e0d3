"""Train the governance screening model: a tiny MLP, deterministic, numpy only.

The model maps five features a Governor can compute from a proposal itself to three
logits, one per risk class (0 routine, 1 review, 2 block). ``ScreenedGovernor.sol``
computes the same features when a proposal is made, asks the oracle for the logits in Zk
mode, and blocks the proposal (it can never be queued) when the block logit is the largest.

Features (each in [0, 1]; the contract encodes them at the model's input scale):
    x0 value_share  = clip(sum of the ETH values of the calls / treasury ETH balance, 0, 1)
                      (treasury = the timelock; an empty treasury counts any value as 1)
    x1 new_targets  = calls to targets the DAO has never executed a call to / number of calls
    x2 actions      = clip(number of calls / 10, 0, 1)
    x3 power_share  = clip(proposer's votes / total supply, both at the block before, 0, 1)
    x4 self_call    = 1 if any call targets the governor or the timelock (a config change)

Synthetic population (fixed seed ``SEED``; the held-out set uses ``SEED + 1``):
    calls n       1 + Poisson(1.5), at most 12
    value_share   40 % move no ETH (0), 40 % U(0, 0.15), 20 % U(0, 1)
    new targets   Binomial(n, p), p = 0 (50 %), 0.5 (25 %) or 1 (25 %)
    power_share   70 % U(0, 0.1), 30 % U(0, 0.5)
    self_call     Bernoulli(0.1)

Ground-truth rule (the label, no noise):
    risk = 1.5*x0*(0.5 + 0.5*x1) + 0.2*x1 + 0.1*x2 + 0.25*x4 - 0.5*x3
    class = routine if risk < 0.35, review if risk < 0.7, block otherwise
Moving treasury value is risky, more so to addresses the DAO has never paid; many calls
and config changes add some risk; a proposer with a large stake lowers it.

Architecture: 5 -> 16 (ReLU) -> 3 logits (no softmax in the graph), trained by full-batch
Adam on softmax cross-entropy with a little L2 (keeps the logits small for the circuit).
Exported with plain Gemm/Relu operators (opset 13), which both onnxruntime and EZKL support.

    python models/governance/train.py   # rewrites screening_model.onnx and calibration.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 4242
HERE = Path(__file__).resolve().parent
ONNX_OUT = HERE / "screening_model.onnx"
CALIBRATION_OUT = HERE / "calibration.json"

N_FEATURES = 5
HIDDEN = 16
N_CLASSES = 3
CLASS_NAMES = ("routine", "review", "block")
MAX_ACTIONS = 10
CLASS_BOUNDS = (0.35, 0.7)
N_TRAIN = 8000
N_HELD_OUT = 2000
N_CALIBRATION = 32
EPOCHS = 3000
LEARNING_RATE = 0.02
L2 = 1e-3

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Dataset:
    x: Array  # (n, 5) features in [0, 1]
    y: npt.NDArray[np.int64]  # (n,) class index


def risk(x: Array) -> Array:
    """The ground-truth risk score of each row of features."""
    x0, x1, x2, x3, x4 = (x[:, i] for i in range(N_FEATURES))
    return 1.5 * x0 * (0.5 + 0.5 * x1) + 0.2 * x1 + 0.1 * x2 + 0.25 * x4 - 0.5 * x3


def label(x: Array) -> npt.NDArray[np.int64]:
    return np.digitize(risk(x), CLASS_BOUNDS).astype(np.int64)


def generate(n: int, seed: int) -> Dataset:
    """``n`` synthetic proposals, reduced to the features the contract computes."""
    rng = np.random.default_rng(seed)
    calls = np.minimum(1 + rng.poisson(1.5, n), 12)
    kind = rng.choice(3, size=n, p=[0.4, 0.4, 0.2])
    value = np.where(
        kind == 0, 0.0, np.where(kind == 1, rng.uniform(0, 0.15, n), rng.uniform(0, 1, n))
    )
    p_new = rng.choice([0.0, 0.5, 1.0], size=n, p=[0.5, 0.25, 0.25])
    new_targets = rng.binomial(calls, p_new) / calls
    big = rng.uniform(size=n) < 0.3
    power = np.where(big, rng.uniform(0, 0.5, n), rng.uniform(0, 0.1, n))
    self_call = (rng.uniform(size=n) < 0.1).astype(np.float64)
    actions = np.minimum(calls / MAX_ACTIONS, 1.0)
    x = np.stack([value, new_targets, actions, power, self_call], axis=1)
    return Dataset(x, label(x))


def training_set() -> Dataset:
    return generate(N_TRAIN, SEED)


def held_out_set() -> Dataset:
    return generate(N_HELD_OUT, SEED + 1)


def forward(params: list[Array], x: Array) -> Array:
    w1, b1, w2, b2 = params
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2


def accuracy(logits: Array, y: npt.NDArray[np.int64]) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == y))


def train(data: Dataset) -> list[Array]:
    rng = np.random.default_rng(SEED)
    params = [
        rng.normal(0, 0.5, size=(N_FEATURES, HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0, 0.5, size=(HIDDEN, N_CLASSES)),
        np.zeros(N_CLASSES),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(N_CLASSES)[data.y]
    for step in range(1, EPOCHS + 1):
        w1, b1, w2, b2 = params
        pre = data.x @ w1 + b1
        h = np.maximum(pre, 0)
        logits = h @ w2 + b2
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        grad = (z / z.sum(axis=1, keepdims=True) - onehot) / len(data.x)
        gw2 = h.T @ grad + L2 * w2
        gh = grad @ w2.T * (pre > 0)
        grads = [data.x.T @ gh + L2 * w1, gh.sum(0), gw2, grad.sum(0)]
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
        "governance_screening",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, N_FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, N_CLASSES])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="oracle-governance"
    )
    model.ir_version = 8
    model.doc_string = "proposal screening: 5 features -> logits (routine, review, block)"
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def calibration_rows(data: Dataset) -> Array:
    """Representative inputs: the corners a contract can produce plus sampled proposals."""
    corners = np.array([[0.0] * N_FEATURES, [1.0] * N_FEATURES, [1.0, 1.0, 0.1, 0.0, 0.0]])
    return np.concatenate([corners, data.x[: N_CALIBRATION - len(corners)]])


def write_calibration(rows: Array, path: Path) -> None:
    flat = [round(float(v), 4) for v in rows.reshape(-1)]
    path.write_text(json.dumps({"input_data": [flat]}) + "\n")


def main() -> None:
    params = train(training_set())
    held = held_out_set()
    export(params, ONNX_OUT)
    write_calibration(calibration_rows(held), CALIBRATION_OUT)
    logits = forward(params, held.x)
    counts = np.bincount(held.y, minlength=N_CLASSES)
    print(f"wrote {ONNX_OUT.name} and {CALIBRATION_OUT.name}")
    print(f"training accuracy {accuracy(forward(params, training_set().x), training_set().y):.4f}")
    print(f"held-out accuracy {accuracy(logits, held.y):.4f} on {len(held.y)} proposals")
    print(f"held-out class counts {dict(zip(CLASS_NAMES, counts.tolist(), strict=True))}")
    print(f"largest |logit| on held-out {float(np.abs(logits).max()):.3f}")


if __name__ == "__main__":
    main()
