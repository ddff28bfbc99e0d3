"""Train the lending risk model: a tiny MLP, deterministic, numpy only.

The model maps five features a lending contract can compute on chain to a risk score in
about [0, 1] (0 = safe, 1 = will default). ``RiskLendingMarket.sol`` computes the same
features, turns the score into a maximum loan-to-value, and refuses loans above it.

Features (each clipped to [0, 1]; the contract encodes them at the model's input scale):
    x0 volatility   = clip(10 * mean_i |p_i - p_{i-1}| / p_{i-1}, 0, 1) over the last
                      8 collateral prices (a 10 % average move saturates it)
    x1 utilisation  = clip(total borrowed / total deposited, 0, 1)
    x2 age          = clip(blocks since the account's first collateral deposit / 1000, 0, 1)
    x3 liquidations = clip(past liquidations / 3, 0, 1)
    x4 repayments   = clip(past repayments / 10, 0, 1)

Synthetic population (fixed seed ``SEED``):
    volatility   a price path of 8 prices with relative steps N(0, sigma), sigma ~ U(0, 0.12),
                 reduced with the formula above (exactly what the contract computes)
    utilisation  U(0, 1)
    age          half the accounts U(0, 1000) blocks old, half U(0, 5000)
    liquidations Poisson(0.4);  repayments Poisson(3)

Ground-truth rule (the label; training labels add N(0, 0.02) noise, held-out labels do not):
    risk = clip(0.10 + 0.35*x0 + 0.40*max(x1 - 0.5, 0) + 0.20*(1 - x2)
                + 0.35*x3 - 0.15*x4*(1 - x3), 0, 1)

Tiers (the contract's map from score to maximum LTV):
    score < 0.3 -> 75 %,  score < 0.6 -> 50 %,  otherwise 0 %

Architecture: 5 -> 16 (ReLU) -> 1, linear output (no sigmoid in the graph), trained by
full-batch Adam on mean squared error, the learning rate decayed to zero on a cosine. The decay
is what makes training reproducible across CPUs: at a constant rate the last steps keep
jumping around the minimum, so a rounding difference between two CPUs' BLAS kernels ended in
weights 0.01 apart and held-out MAE anywhere from 0.002 to 0.011; with the decay every CPU
lands on the same weights to about 1e-15. Exported with plain Gemm/Relu operators (opset 13),
which both onnxruntime and EZKL support.

    python models/risk/train.py     # rewrites risk_model.onnx and calibration.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 2026
HERE = Path(__file__).resolve().parent
ONNX_OUT = HERE / "risk_model.onnx"
CALIBRATION_OUT = HERE / "calibration.json"

N_FEATURES = 5
HIDDEN = 16
PRICE_HISTORY = 8
VOLATILITY_GAIN = 10.0
AGE_SCALE_BLOCKS = 1000
LIQUIDATION_SCALE = 3
REPAYMENT_SCALE = 10
TIER_BOUNDS = (0.3, 0.6)  # score < 0.3 -> tier 0 (75 %), < 0.6 -> tier 1 (50 %), else tier 2
TIER_LTV_PERCENT = (75, 50, 0)
TRAIN_SIZE = 8192
HELD_OUT_SIZE = 2048
CALIBRATION_SIZE = 32
LABEL_NOISE = 0.02

Array = npt.NDArray[np.float64]


def volatility_feature(prices: Array) -> Array:
    """Rows of prices -> the contract's volatility feature (see the module docstring)."""
    rel = np.abs(np.diff(prices, axis=1)) / prices[:, :-1]
    return np.clip(VOLATILITY_GAIN * rel.mean(axis=1), 0.0, 1.0)


def risk_rule(x: Array) -> Array:
    """The ground truth the model learns (noise-free)."""
    vol, util, age, liq, rep = (x[:, i] for i in range(N_FEATURES))
    risk = (
        0.10
        + 0.35 * vol
        + 0.40 * np.maximum(util - 0.5, 0.0)
        + 0.20 * (1.0 - age)
        + 0.35 * liq
        - 0.15 * rep * (1.0 - liq)
    )
    return np.clip(risk, 0.0, 1.0)


def tier(score: Array) -> npt.NDArray[np.int64]:
    """0, 1 or 2: the LTV tier a score falls in."""
    return np.searchsorted(np.array(TIER_BOUNDS), score, side="right").astype(np.int64)


def generate(n: int, rng: np.random.Generator) -> Array:
    """``n`` synthetic accounts' features, shape (n, 5), each in [0, 1]."""
    sigma = rng.uniform(0.0, 0.12, size=(n, 1))
    steps = rng.normal(0.0, 1.0, size=(n, PRICE_HISTORY - 1)) * sigma
    prices = 100.0 * np.cumprod(np.concatenate([np.ones((n, 1)), 1.0 + steps], axis=1), axis=1)
    prices = np.maximum(prices, 1.0)
    vol = volatility_feature(prices)
    util = rng.uniform(0.0, 1.0, size=n)
    span = np.where(rng.uniform(size=n) < 0.5, AGE_SCALE_BLOCKS, 5 * AGE_SCALE_BLOCKS)
    age = np.clip(rng.uniform(0.0, 1.0, size=n) * span / AGE_SCALE_BLOCKS, 0.0, 1.0)
    liq = np.clip(rng.poisson(0.4, size=n) / LIQUIDATION_SCALE, 0.0, 1.0)
    rep = np.clip(rng.poisson(3.0, size=n) / REPAYMENT_SCALE, 0.0, 1.0)
    return np.stack([vol, util, age, liq, rep], axis=1)


def held_out_set() -> tuple[Array, Array]:
    """The held-out features and noise-free labels (the same on every call)."""
    rng = np.random.default_rng(SEED + 1)
    x = generate(HELD_OUT_SIZE, rng)
    return x, risk_rule(x)


def forward(params: list[Array], x: Array) -> Array:
    w1, b1, w2, b2 = params
    return (np.maximum(x @ w1 + b1, 0.0) @ w2 + b2)[:, 0]


def train(steps: int = 4000) -> list[Array]:
    """Deterministic: the same seed gives the same weights."""
    rng = np.random.default_rng(SEED)
    x = generate(TRAIN_SIZE, rng)
    y = (risk_rule(x) + rng.normal(0.0, LABEL_NOISE, size=TRAIN_SIZE))[:, None]
    params = [
        rng.normal(0.0, 0.5, size=(N_FEATURES, HIDDEN)),
        np.full(HIDDEN, 0.05),
        rng.normal(0.0, 0.3, size=(HIDDEN, 1)),
        np.zeros(1),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr0, beta1, beta2, eps = 0.01, 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        lr = lr0 * 0.5 * (1.0 + np.cos(np.pi * (t - 1) / steps))  # cosine decay to ~0
        w1, b1, w2, b2 = params
        h = np.maximum(x @ w1 + b1, 0.0)
        grad = 2.0 * (h @ w2 + b2 - y) / len(x)
        gh = grad @ w2.T * (h > 0)
        grads = [x.T @ gh, gh.sum(0), h.T @ grad, grad.sum(0)]
        for i, g in enumerate(grads):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@dataclass(frozen=True)
class Metrics:
    mae: float
    max_abs_error: float
    tier_accuracy: float


def evaluate(predict: np.ndarray, truth: Array) -> Metrics:
    err = np.abs(np.asarray(predict, dtype=np.float64) - truth)
    return Metrics(
        mae=float(err.mean()),
        max_abs_error=float(err.max()),
        tier_accuracy=float(np.mean(tier(np.asarray(predict, np.float64)) == tier(truth))),
    )


def export(params: list[Array], path: Path) -> None:
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "risk_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, N_FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="oracle-risk"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def calibration_rows() -> Array:
    """Representative inputs for EZKL calibration: held-out rows plus the corners."""
    x, _ = held_out_set()
    corners = np.array([[0.0] * N_FEATURES, [1.0] * N_FEATURES])
    return np.concatenate([corners, x[: CALIBRATION_SIZE - len(corners)]], axis=0)


def write_calibration(path: Path) -> None:
    flat = [round(float(v), 4) for v in calibration_rows().reshape(-1)]
    path.write_text(json.dumps({"input_data": [flat]}) + "\n")


def main() -> None:
    params = train()
    export(params, ONNX_OUT)
    write_calibration(CALIBRATION_OUT)
    x, y = held_out_set()
    metrics = evaluate(forward([p.astype(np.float32) for p in params], x), y)
    baseline = evaluate(np.full_like(y, y.mean()), y)
    print(f"wrote {ONNX_OUT.name} and {CALIBRATION_OUT.name}")
    print(
        f"held-out ({HELD_OUT_SIZE}): MAE {metrics.mae:.4f}, max |err| "
        f"{metrics.max_abs_error:.4f}, tier accuracy {metrics.tier_accuracy:.4f} "
        f"(constant-mean baseline: MAE {baseline.mae:.4f}, tier accuracy "
        f"{baseline.tier_accuracy:.4f})"
    )
    counts = np.bincount(tier(y), minlength=3)
    print(f"held-out tiers (75 % / 50 % / 0 %): {counts.tolist()}")


if __name__ == "__main__":
    main()
