"""Input checks and output quantisation, and the session cache against the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracle.db import ModelRecord
from oracle.errors import InferenceError, InputError, ModelError
from oracle.fixedpoint import BN254_R, from_fixed, to_fixed
from oracle.models.store import inspect_onnx, onnx_hash_of
from oracle.models.zk import to_field
from oracle.paths import ROOT
from workers.inference import quantize_output, validate_input
from workers.runtime import SessionCache

MODEL = ROOT / "models" / "example_mlp.onnx"


def record(**kw: int) -> ModelRecord:
    base = {"input_length": 4, "output_length": 1, "input_scale": 16, "output_scale": 16}
    base.update(kw)
    return ModelRecord(
        model_id="0x" + "00" * 32, onnx_hash="0x" + "01" * 32, artifact_path="", **base
    )


def test_validate_input_length_and_range() -> None:
    validate_input([1, 2, 3, 4], record(), 62)
    with pytest.raises(InputError, match="bad input length: expected 4, got 3"):
        validate_input([1, 2, 3], record(), 62)
    with pytest.raises(InputError, match="value out of range at index 2"):
        validate_input([1, 2, -(2**62), 4], record(), 62)


def test_quantize_output() -> None:
    assert quantize_output(np.array([0.5, -1.25]), record(output_length=2)) == [32768, -81920]
    with pytest.raises(InferenceError, match="non-finite"):
        quantize_output(np.array([np.nan]), record())
    with pytest.raises(InferenceError, match="output length"):
        quantize_output(np.array([1.0, 2.0]), record())


def test_fixed_point_and_field_mapping() -> None:
    assert to_fixed(1.5, 16) == 98304 and from_fixed(98304, 16) == 1.5
    assert to_field(-3) == BN254_R - 3 and to_field(5) == 5
    with pytest.raises(ValueError, match="non-finite"):
        to_fixed(float("inf"), 16)


def test_session_cache_loads_once_and_checks_the_hash(tmp_path: Path) -> None:
    cache = SessionCache("cpu")
    onnx_hash = onnx_hash_of(MODEL)
    first = cache.get(onnx_hash, MODEL, 4)
    assert cache.get(onnx_hash, MODEL, 4) is first
    y = first.run(np.array([0.5, -0.25, 0.125, 0.75], dtype=np.float32))
    assert y.shape == (1,)
    with pytest.raises(ModelError, match="hashes to"):
        SessionCache("cpu").get("0x" + "ab" * 32, MODEL, 4)


def test_inspect_onnx_reads_shapes_and_rejects_garbage(tmp_path: Path) -> None:
    shape = inspect_onnx(MODEL)
    assert (shape.input_length, shape.output_length) == (4, 1)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        inspect_onnx(junk)
