"""The shipped risk model (models/risk/) meets its model card's accuracy floor, is the file its
card names, and is what the training script makes on any CPU: in decisions and metrics within
a stated tolerance, not in bits (another CPU's BLAS sums in another order)."""

from __future__ import annotations

import json
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from oracle.paths import ROOT
from tests.support.models import card_sha256, file_sha256, load_script

RISK_DIR = ROOT / "models" / "risk"
# Floors stated in models/risk/MODEL_CARD.md ("Accuracy"); the shipped model does better.
MAE_CEILING = 0.015
TIER_ACCURACY_FLOOR = 0.95
# Retrained under OpenBLAS's SkylakeX, Haswell, SandyBridge and Prescott kernels, on 1 and 2
# threads, the held-out scores agree to about 1e-7 (the float32 export); the tolerances hold
# that with room, while a change to the data, the rule or the training loop moves far more
# (before the cosine decay, two CPUs' runs differed by 0.025 in score and 0.009 in MAE).
SCORE_TOLERANCE = 1e-3  # largest |retrained - shipped| score on the held-out set
MAE_TOLERANCE = 1e-4
TIER_ACCURACY_TOLERANCE = 0.002  # 4 of the 2,048 held-out accounts


def _load_train() -> ModuleType:
    return load_script(RISK_DIR / "train.py", "risk_train")


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return _load_train()


def _predict(x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        str(RISK_DIR / "risk_model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return np.array(
        [
            float(session.run(None, {name: row.astype(np.float32).reshape(1, -1)})[0][0, 0])
            for row in x
        ]
    )


def test_shipped_model_beats_the_model_card_floor(train: ModuleType) -> None:
    x, y = train.held_out_set()
    assert x.shape == (train.HELD_OUT_SIZE, 5) and x.min() >= 0.0 and x.max() <= 1.0
    metrics = train.evaluate(_predict(x), y)
    assert metrics.mae < MAE_CEILING, metrics
    assert metrics.tier_accuracy > TIER_ACCURACY_FLOOR, metrics
    # The floor means something: a constant guess is far below it.
    baseline = train.evaluate(np.full_like(y, y.mean()), y)
    assert baseline.tier_accuracy < TIER_ACCURACY_FLOOR and baseline.mae > MAE_CEILING


def test_every_tier_is_represented_in_the_held_out_set(train: ModuleType) -> None:
    _, y = train.held_out_set()
    counts = np.bincount(train.tier(y), minlength=3)
    assert (counts > 50).all(), counts


def test_graph_is_plain_gemm_relu_opset_13() -> None:
    model = onnx.load(str(RISK_DIR / "risk_model.onnx"))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm"]
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {13}


def test_calibration_file_holds_whole_inputs_in_range() -> None:
    data = json.loads((RISK_DIR / "calibration.json").read_text())
    flat = [v for row in data["input_data"] for v in row]
    assert len(flat) % 5 == 0 and len(flat) // 5 >= 16
    assert all(0.0 <= v <= 1.0 for v in flat)


def test_training_is_deterministic(train: ModuleType) -> None:
    a = train.train(steps=50)
    b = train.train(steps=50)
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa, pb)


def test_the_shipped_file_is_the_one_its_model_card_names() -> None:
    model = RISK_DIR / "risk_model.onnx"
    assert file_sha256(model) == card_sha256(RISK_DIR / "MODEL_CARD.md", model.name)


def test_retraining_reproduces_the_shipped_models_decisions(train: ModuleType) -> None:
    """Rerun the full training (~25 s) and compare what a lending market sees on the held-out
    accounts: every tier decision that is not borderline (the shipped score at least
    SCORE_TOLERANCE from a tier bound) is the same, scores and metrics within tolerance."""
    x, y = train.held_out_set()
    retrained = train.forward([p.astype(np.float32) for p in train.train()], x)
    shipped = _predict(x)
    assert float(np.abs(retrained - shipped).max()) < SCORE_TOLERANCE
    clear = (
        np.min(np.abs(shipped[:, None] - np.array(train.TIER_BOUNDS)), axis=1) >= SCORE_TOLERANCE
    )
    assert clear.mean() > 0.7  # most decisions are not borderline: the check has teeth
    np.testing.assert_array_equal(train.tier(retrained)[clear], train.tier(shipped)[clear])
    new, old = train.evaluate(retrained, y), train.evaluate(shipped, y)
    assert new.mae < MAE_CEILING and new.tier_accuracy > TIER_ACCURACY_FLOOR, new
    assert abs(new.mae - old.mae) <= MAE_TOLERANCE, (new, old)
    assert abs(new.tier_accuracy - old.tier_accuracy) <= TIER_ACCURACY_TOLERANCE, (new, old)
