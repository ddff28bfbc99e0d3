"""The shipped governance screening model (models/governance/) meets its model card's floor."""

from __future__ import annotations

import json
from types import ModuleType

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest

from oracle.paths import ROOT
from tests.support.models import load_script

GOV_DIR = ROOT / "models" / "governance"
MODEL = GOV_DIR / "screening_model.onnx"
# Floor stated in models/governance/MODEL_CARD.md ("Accuracy"); the shipped model does better.
ACCURACY_FLOOR = 0.97
BLOCK_RECALL_FLOOR = 0.85  # share of held-out "block" proposals the model puts in "block"
FALSE_BLOCK_CEILING = 0.01  # share of held-out routine proposals the model blocks


def _load_train() -> ModuleType:
    return load_script(GOV_DIR / "train.py", "governance_train")


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return _load_train()


def _logits(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    rows = [session.run(None, {"input": row.astype(np.float32).reshape(1, -1)})[0] for row in x]
    return np.concatenate(rows).astype(np.float32)


def test_held_out_accuracy_is_above_the_model_card_floor(train: ModuleType) -> None:
    held = train.held_out_set()
    predicted = np.argmax(_logits(held.x), axis=1)
    assert float(np.mean(predicted == held.y)) >= ACCURACY_FLOOR
    blocks = held.y == 2
    assert blocks.sum() > 50  # the held-out set has enough proposals to block
    assert float(np.mean(predicted[blocks] == 2)) >= BLOCK_RECALL_FLOOR
    assert float(np.mean(predicted[held.y == 0] == 2)) <= FALSE_BLOCK_CEILING


def test_the_demo_proposals_land_in_the_expected_classes() -> None:
    grant = [0.01, 0.0, 0.1, 0.6, 0.0]  # 1 % of the treasury to a known target, whale
    drain = [0.9, 1.0, 0.1, 0.05, 0.0]  # 90 % of the treasury to a new address, 5 % holder
    assert np.argmax(_logits(np.array([grant, drain])), axis=1).tolist() == [0, 2]


def test_graph_is_plain_gemm_relu_with_logit_outputs() -> None:
    model = onnx.load(str(MODEL))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm"]
    assert model.opset_import[0].version == 13
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 3]


def test_calibration_data_is_whole_inputs_in_range(train: ModuleType) -> None:
    flat = json.loads((GOV_DIR / "calibration.json").read_text())["input_data"][0]
    assert len(flat) == train.N_CALIBRATION * train.N_FEATURES
    assert min(flat) >= 0.0 and max(flat) <= 1.0


def test_labels_follow_the_documented_rule(train: ModuleType) -> None:
    x = np.array([[0.0, 0.0, 0.1, 0.5, 0.0], [0.3, 0.5, 0.1, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 1.0]])
    assert train.label(x).tolist() == [0, 1, 2]  # risks -0.24, 0.5625 and 2.35
