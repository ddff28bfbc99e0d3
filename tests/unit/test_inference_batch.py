"""Micro-batching in the inference stage: batch checks and conversions agree with the
one-row functions, and a job that batches other rows gives each its own result, once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.errors import InferenceError, InputError
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from oracle.settings import Settings, load_settings
from oracle.types import Mode, RequestStatus
from workers import rows
from workers.inference import (
    InferenceService,
    prepare_inputs,
    quantize_output,
    quantize_outputs,
    validate_input,
)
from workers.runtime import SessionCache

DIGITS = ROOT / "models" / "digits" / "digits_mlp.onnx"
MODEL_ID = "0x" + "d1" * 32
OTHER_MODEL_ID = "0x" + "e2" * 32


def record(**kw: int) -> ModelRecord:
    base = {"input_length": 4, "output_length": 2, "input_scale": 16, "output_scale": 16}
    base.update(kw)
    return ModelRecord(model_id=MODEL_ID, onnx_hash="0x" + "01" * 32, artifact_path="", **base)


@pytest.mark.parametrize("bits", [8, 62, 63, 250])
def test_prepare_inputs_rejects_and_converts_like_one_row_at_a_time(bits: int) -> None:
    rng = np.random.default_rng(bits)
    b = 1 << bits
    rows_in: list[list[int]] = [
        [1, 2, 3],  # short
        [1, 2, 3, 4, 5],  # long
        [0, b - 1, -(b - 1), 7],  # at the bound: fine
        [0, 1, b, 2],  # out of range at index 2
        [-b, 0, 0, 0],  # out of range at index 0
        [0, 0, 0, -(2**63)],  # int64's minimum
        [0, 2**70, 0, 0],  # beyond int64
        *[[int(v) for v in rng.integers(-(2**40), 2**40, 4)] for _ in range(20)],
    ]
    as_text = [[str(v) for v in r] for r in rows_in]  # rows hold the integers as JSON text
    x, errors = prepare_inputs(as_text, record(), bits)
    for i, values in enumerate(rows_in):
        try:
            validate_input(values, record(), bits)
        except InputError as exc:
            assert errors.get(i) == str(exc), i
            continue
        assert i not in errors, (i, errors.get(i))
        want = (np.array(values, dtype=np.float64) / float(1 << 16)).astype(np.float32)
        assert np.array_equal(x[i], want), i
    assert errors, "the cases include rejected rows"


def test_quantize_outputs_rounds_and_fails_like_one_row_at_a_time() -> None:
    rng = np.random.default_rng(3)
    ties = np.array([[0.5, 1.5], [2.5, -0.5], [-1.5, 3.0]]) / (1 << 16)
    y = np.vstack(
        [
            rng.normal(0, 100, (30, 2)),
            ties,
            [[np.nan, 1.0]],
            [[1.0, np.inf]],
            [[1e75, 0.0]],  # fits int256 at scale 16? no: 1e75 * 2^16 > 2^255
            [[1e70, 0.0]],  # fits
        ]
    )
    got = quantize_outputs(y, record())
    for row, result in zip(y, got, strict=True):
        try:
            want: list[int] | str = quantize_output(row, record())
        except InferenceError as exc:
            want = str(exc)
        assert (str(result) if isinstance(result, InferenceError) else result) == want
    wrong = quantize_outputs(np.zeros((2, 3)), record())
    assert all("output length 3, registry says 2" in str(e) for e in wrong)


# -- the service against a real database -------------------------------------------------
def _setup(db_url: str, tmp_path: Path, batch_size: int) -> tuple[Settings, Database]:
    db = Database(db_url)
    db.upgrade()
    settings = load_settings(
        db={"url": db_url},
        store={"path": str(tmp_path / "store")},
        worker={"provider": "cpu", "batch_size": batch_size},
    )
    onnx_hash, path = ArtifactStore(tmp_path / "store").put(DIGITS)
    with db.session() as s:
        for model_id, verifier in ((MODEL_ID, "0x" + "ab" * 20), (OTHER_MODEL_ID, None)):
            s.add(
                ModelRecord(
                    model_id=model_id,
                    onnx_hash=onnx_hash,
                    artifact_path=str(path),
                    input_length=64,
                    output_length=10,
                    input_scale=13,
                    output_scale=13,
                    verifier=verifier,
                )
            )
    return settings, db


def _add_rows(
    db: Database, inputs: list[list[int]], model_id: str = MODEL_ID, **kw: int
) -> list[int]:
    with db.session() as s:
        made = []
        for values in inputs:
            row = InferenceRequest(
                chain_id=31337,
                coordinator="0x" + "c0" * 20,
                request_id=abs(hash((model_id, len(made), tuple(values), str(kw)))) % 2**60,
                model_id=model_id,
                consumer="0x" + "33" * 20,
                input=[str(v) for v in values],
                mode=kw.get("mode", Mode.NONE),
                callback_gas_limit=100_000,
                fee="0",
                block_number=1,
                block_hash="0x" + "44" * 32,
                tx_hash="0x" + "55" * 32,
                log_index=len(made),
                status=RequestStatus.QUEUED.value,
                attempts=kw.get("attempts", 0),
            )
            s.add(row)
            s.flush()
            made.append(row.id)
        return made


def _rows(db: Database, ids: list[int]) -> list[InferenceRequest]:
    with db.session() as s:
        found = {
            r.id: r for r in s.scalars(select(InferenceRequest).where(InferenceRequest.id.in_(ids)))
        }
        s.expunge_all()
    return [found[i] for i in ids]


def _images(n: int, seed: int = 1) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(v) for v in rng.integers(0, 1 << 13, 64)] for _ in range(n)]


def test_one_job_runs_its_batch_and_each_row_keeps_its_own_result(
    db_url: str, tmp_path: Path
) -> None:
    settings, db = _setup(db_url, tmp_path / "batched", batch_size=8)
    images = _images(10)
    images[3] = images[3][:5]  # a bad row inside the batch: its own error, nobody else's
    ids = _add_rows(db, images)
    (zk_id,) = _add_rows(db, _images(1, seed=9), mode=Mode.ZK)
    (other_id,) = _add_rows(db, _images(1, seed=10), model_id=OTHER_MODEL_ID)
    (claimed_before,) = _add_rows(db, _images(1, seed=11), attempts=1)  # was claimed: alone
    service = InferenceService(settings, db, SessionCache("cpu"))

    outcomes = service.run(ids[0])
    assert [o.row_id for o in outcomes] == ids[:8]  # itself + batch_size - 1, oldest first
    assert (
        outcomes[3].status == "error"
        and outcomes[3].error == "bad input length: expected 64, got 5"
    )
    assert all(o.status == "inferred" for i, o in enumerate(outcomes) if i != 3)
    # Rows the batch ran: their own jobs arrive later and find them done.
    assert [service.run(i)[0].status for i in ids[1:8]] == ["skipped"] * 7
    # The next job batches what is left of the same model (Zk row included), never the
    # other model's row nor the row that had been claimed before.
    rest = service.run(ids[8])
    assert [o.row_id for o in rest] == [ids[8], ids[9], zk_id]
    assert [o.status for o in rest] == ["inferred", "inferred", "proving"]
    assert [o.row_id for o in service.run(claimed_before)] == [claimed_before]
    assert [o.row_id for o in service.run(other_id)] == [other_id]

    # The same requests one at a time (batch_size 1) give the same outputs, bit for bit.
    settings1, db1 = _setup(f"sqlite:///{tmp_path / 'alone.db'}", tmp_path / "alone", 1)
    ids1 = _add_rows(db1, images)
    service1 = InferenceService(settings1, db1, SessionCache("cpu"))
    for i in ids1:
        assert len(service1.run(i)) == 1
    batched, alone = _rows(db, ids), _rows(db1, ids1)
    assert [r.output for r in batched] == [r.output for r in alone]
    assert [r.error for r in batched] == [r.error for r in alone]
    assert all(r.attempts == 1 for r in batched)  # each row claimed exactly once
    (zk_row,) = _rows(db, [zk_id])
    assert zk_row.status == RequestStatus.PROVING.value and len(zk_row.reference_output or []) == 10


def test_a_row_lands_in_at_most_one_batch(db_url: str, tmp_path: Path) -> None:
    _, db = _setup(db_url, tmp_path, batch_size=4)
    leader, *others = _add_rows(db, _images(7))
    (lead_row,) = _rows(db, [leader])
    first = rows.claim_batch(db, lead_row, RequestStatus.QUEUED.value, 4)
    second = rows.claim_batch(db, lead_row, RequestStatus.QUEUED.value, 4)
    assert [r.id for r in first] == others[:4]
    assert [r.id for r in second] == others[4:]
    assert rows.claim_batch(db, lead_row, RequestStatus.QUEUED.value, 4) == []


def test_finish_many_writes_each_row_only_if_it_is_still_claimable(
    db_url: str, tmp_path: Path
) -> None:
    _, db = _setup(db_url, tmp_path, batch_size=4)
    ids = _add_rows(db, _images(4))
    claimable = (RequestStatus.SEEN.value, RequestStatus.QUEUED.value)

    def results(tag: str) -> list[tuple[int, dict[str, object]]]:
        return [
            (i, {"status": RequestStatus.INFERRED.value, "output": [tag, str(i)], "error": None})
            for i in ids
        ]

    # Meanwhile the listener saw the block of one row reorged away: that row keeps its
    # status and gets no output; the others each get their own (the two-statement path).
    with db.session() as s:
        s.get_one(InferenceRequest, ids[1]).status = RequestStatus.REORGED.value
    assert rows.finish_many(db, results("a"), claimable) == [True, False, True, True]
    got = _rows(db, ids)
    assert [r.status for r in got] == ["inferred", "reorged", "inferred", "inferred"]
    assert [r.output for r in got] == [["a", str(ids[0])], None, *(["a", str(i)] for i in ids[2:])]

    # All rows still claimable (the one-statement path): each gets its own values; done
    # rows are never written twice.
    with db.session() as s:
        for i in ids:
            s.get_one(InferenceRequest, i).status = RequestStatus.QUEUED.value
    assert rows.finish_many(db, results("b"), claimable) == [True] * 4
    assert [r.output for r in _rows(db, ids)] == [["b", str(i)] for i in ids]
    assert rows.finish_many(db, results("c"), claimable) == [False] * 4
    assert [r.output for r in _rows(db, ids)] == [["b", str(i)] for i in ids]


def test_a_driver_error_in_the_status_read_is_sqlalchemys(tmp_path: Path) -> None:
    # The status read bypasses SQLAlchemy's execution layer; its errors must not (the
    # task retries on sqlalchemy's OperationalError).
    db = Database(f"sqlite:///{tmp_path / 'no-schema.db'}")
    with pytest.raises(OperationalError, match="no such table: requests"):
        rows.status_of(db, 1)
