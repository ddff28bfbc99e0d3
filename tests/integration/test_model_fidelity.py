"""Each shipped model's circuit agrees with onnxruntime on held-out data, within the
tolerance its model card states (the circuit's output is what a proof posts on chain)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from tests.support.models import load_script

pytestmark = pytest.mark.integration

MODELS = ROOT / "models"
N = 40


def example_inputs() -> np.ndarray:
    return np.random.default_rng(99).uniform(-1, 1, size=(N, 4))


def risk_inputs() -> np.ndarray:
    x, _ = load_script(MODELS / "risk" / "train.py", "risk_train_fidelity").held_out_set()
    return np.asarray(x[:N])


def governance_inputs() -> np.ndarray:
    data = load_script(MODELS / "governance" / "train.py", "gov_train_fidelity").held_out_set()
    return np.asarray(data.x[:N])


def digits_inputs() -> np.ndarray:
    body = json.loads((MODELS / "digits" / "held_out.json").read_text())
    return np.asarray(body["pixels"][:N], dtype=np.float64) / float(body["scale"])


CASES = {
    # name: (onnx, calibration, held-out inputs, tolerance from the model card)
    "example": (
        MODELS / "example_mlp.onnx",
        MODELS / "example_mlp.calibration.json",
        example_inputs,
        0.01,
    ),
    "risk": (
        MODELS / "risk" / "risk_model.onnx",
        MODELS / "risk" / "calibration.json",
        risk_inputs,
        0.002,
    ),
    "governance": (
        MODELS / "governance" / "screening_model.onnx",
        MODELS / "governance" / "calibration.json",
        governance_inputs,
        0.01,
    ),
    "digits": (
        MODELS / "digits" / "digits_mlp.onnx",
        MODELS / "digits" / "calibration.json",
        digits_inputs,
        0.01,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_circuit_matches_onnxruntime_on_held_out_data(
    name: str, tmp_path: Path, circuit_of: Callable[[Path, Path], Path]
) -> None:
    """The circuit onboarding builds (once per run: the DeFi and DAO tests onboard the same)."""
    onnx_path, calibration, inputs_fn, tolerance = CASES[name]
    store = ArtifactStore(circuit_of(onnx_path, calibration))
    onnx_hash, manifest = onboarding.build(
        store, onnx_path, calibration, onboarding.SrsChoice(dev=True), zk.CircuitParams(), print
    )
    files, _ = onboarding.check_circuit(store, onnx_hash)
    prover = zk.Prover(files, onboarding.srs_dir(store) / manifest.srs, tmp_path / "work")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    s_in, s_out = 1 << manifest.input_scale, 1 << manifest.output_scale
    worst = 0.0
    for i, x in enumerate(inputs_fn()):
        q = [round(float(v) * s_in) for v in x]
        circuit = np.array(prover.circuit_output(q, f"t{i}"), dtype=np.float64) / s_out
        feed = (np.array(q, dtype=np.float64) / s_in).astype(np.float32).reshape(1, -1)
        reference = session.run(None, {feed_name: feed})[0].reshape(-1).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(circuit - reference))))
    assert worst < tolerance, f"{name}: max |circuit - onnxruntime| = {worst} >= {tolerance}"
    print(json.dumps({"model": name, "max_abs_diff": worst, "tolerance": tolerance}))
