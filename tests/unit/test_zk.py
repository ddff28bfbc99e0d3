"""The EZKL adapter's own checks: budgets, SRS files, field mapping, calibration data."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from oracle.errors import ModelError, ProofError
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from workers.proving import max_deviation

EXAMPLE = ROOT / "models" / "example_mlp.onnx"


def info(logrows: int, cols: int = 1) -> zk.CircuitInfo:
    return zk.CircuitInfo(
        logrows=logrows, input_scale=13, output_scale=13, num_rows=1, num_inner_cols=cols
    )


def test_budget_refuses_too_many_rows_and_says_by_how_much() -> None:
    with pytest.raises(zk.CircuitTooLargeError, match=r"2\^18 rows.*2\^16 by 4x"):
        zk.check_budget(info(18), zk.CircuitParams(max_logrows=16))


def test_budget_refuses_too_much_memory_and_says_by_how_much() -> None:
    need = info(20).est_prover_memory_mb  # 2^20 rows x 2 columns x 4 KiB = 8192 MB
    assert need == 8192
    with pytest.raises(zk.CircuitTooLargeError, match=f"about {need} MB.*by {need - 1000} MB"):
        zk.check_budget(info(20), zk.CircuitParams(max_logrows=24, max_prover_memory_mb=1000))
    zk.check_budget(info(10), zk.CircuitParams())  # small circuits pass


def test_srs_logrows_reads_the_header(tmp_path: Path) -> None:
    good = tmp_path / "k17.srs"
    good.write_bytes(struct.pack("<I", 17) + b"\0" * 64)
    assert zk.srs_logrows(good) == 17
    bad = tmp_path / "bad.srs"
    bad.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ProofError, match="not a KZG parameter file"):
        zk.srs_logrows(bad)
    with pytest.raises(ProofError, match="cannot read"):
        zk.srs_logrows(tmp_path / "missing.srs")


@pytest.mark.parametrize("x", [0, 1, -1, 12345, -(2**200), zk.FIELD_MODULUS // 2])
def test_field_mapping_round_trips_like_the_coordinator(x: int) -> None:
    v = zk.to_field(x)
    assert 0 <= v < zk.FIELD_MODULUS
    assert v == (x if x >= 0 else zk.FIELD_MODULUS - (-x % zk.FIELD_MODULUS))
    assert zk.from_field(v) == x


def test_bn254_modulus_is_the_scalar_field_order() -> None:
    # r = 36u^4 + 36u^3 + 18u^2 + 6u + 1 with the BN254 parameter u.
    u = 4965661367192848881
    assert 36 * u**4 + 36 * u**3 + 18 * u**2 + 6 * u + 1 == zk.FIELD_MODULUS


def test_max_deviation() -> None:
    assert max_deviation([8192, -4096], 13, [1.0, -0.5]) == 0.0
    assert max_deviation([8192], 13, [0.75]) == pytest.approx(0.25)
    assert max_deviation([1], 13, []) == float("inf")


@pytest.mark.parametrize(
    "content,message",
    [
        ("not json", "must be JSON"),
        (json.dumps({"rows": []}), "must be JSON"),
        (json.dumps({"input_data": [[1, 2, 3]]}), "not a whole number of 4-value inputs"),
        (json.dumps({"input_data": [[]]}), "not a whole number"),
    ],
)
def test_bad_calibration_data_is_refused_before_any_slow_step(
    tmp_path: Path, content: str, message: str
) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text(content)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ModelError, match=message):
        onboarding.build(
            store, EXAMPLE, cal, onboarding.SrsChoice(dev=True), zk.CircuitParams(), print
        )
    assert not (store.root / "zk").exists() or not any((store.root / "zk").iterdir())


def test_srs_choice_needs_exactly_one() -> None:
    with pytest.raises(ModelError):
        onboarding.SrsChoice()
    with pytest.raises(ModelError):
        onboarding.SrsChoice(path=Path("x.srs"), dev=True)


def test_oversized_circuit_is_refused_at_onboarding(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(zk.CircuitTooLargeError, match=r"over the budget of 2\^6"):
        onboarding.build(
            store,
            EXAMPLE,
            ROOT / "models" / "example_mlp.calibration.json",
            onboarding.SrsChoice(dev=True),
            zk.CircuitParams(max_logrows=6),
            lambda _: None,
        )
    assert not any((store.root / "zk").iterdir())  # the scratch directory was removed


def test_a_real_srs_smaller_than_the_circuit_is_refused(tmp_path: Path) -> None:
    small = tmp_path / "k4.srs"
    zk.generate_dev_srs(small, 4)
    with pytest.raises(ProofError, match=r"covers 2\^4 rows; the circuit needs 2\^10"):
        onboarding.build(
            ArtifactStore(tmp_path / "store"),
            EXAMPLE,
            ROOT / "models" / "example_mlp.calibration.json",
            onboarding.SrsChoice(path=small),
            zk.CircuitParams(),
            lambda _: None,
        )
