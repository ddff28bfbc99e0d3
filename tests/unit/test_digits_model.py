"""The shipped flagship model (models/digits/) meets its model card: size, accuracy, and
training that reproduces the checked-in file byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from oracle.models.store import inspect_onnx
from oracle.paths import ROOT
from tests.support.models import load_script

DIGITS = ROOT / "models" / "digits"
MODEL = DIGITS / "digits_mlp.onnx"
ACCURACY_FLOOR = 0.96  # models/digits/MODEL_CARD.md; the shipped model scores 0.9778
EXAMPLE_PARAMETERS = 49  # models/example_mlp.onnx: 4-8-1


def _held_out() -> tuple[np.ndarray, np.ndarray]:
    body = json.loads((DIGITS / "held_out.json").read_text())
    x = np.asarray(body["pixels"], dtype=np.float64) / float(body["scale"])
    return x, np.asarray(body["labels"], dtype=np.int64)


def test_it_has_at_least_ten_times_the_example_models_parameters() -> None:
    model = onnx.load(str(MODEL))
    n = sum(numpy_helper.to_array(init).size for init in model.graph.initializer)
    assert n >= 10 * EXAMPLE_PARAMETERS
    shape = inspect_onnx(MODEL)
    assert (shape.input_length, shape.output_length) == (64, 10)


def test_held_out_accuracy_is_above_the_model_card_floor() -> None:
    x, y = _held_out()
    assert len(y) == 360 and set(y.tolist()) == set(range(10))
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.astype(np.float32)[:1]})[0]
    assert logits.shape == (1, 10)
    rows = [session.run(None, {"input": r.astype(np.float32).reshape(1, -1)})[0] for r in x]
    accuracy = float(np.mean(np.concatenate(rows).argmax(axis=1) == y))
    assert accuracy >= ACCURACY_FLOOR, accuracy


def test_training_reproduces_the_checked_in_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("sklearn", reason="training needs the [train] extra (scikit-learn)")
    train = load_script(DIGITS / "train.py", "digits_train")
    for name in ("ONNX_OUT", "CALIBRATION_OUT", "HELD_OUT"):
        monkeypatch.setattr(train, name, tmp_path / getattr(train, name).name)
    train.main()
    for name in ("digits_mlp.onnx", "calibration.json", "held_out.json"):
        assert (tmp_path / name).read_bytes() == (DIGITS / name).read_bytes(), name
