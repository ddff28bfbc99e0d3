"""Micro-batching through a real worker process: requests that wait together in the queue
are run by one job as one batch, and each is answered once with its own output."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sqlalchemy import select

from oracle.db import InferenceRequest
from oracle.fixedpoint import from_fixed, to_fixed
from tests.support.models import EXAMPLE_MODEL
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

N = 8


def test_requests_waiting_together_run_as_one_batch_each_answered_once(
    stack: Stack, running_node: object
) -> None:
    stack.worker.kill()  # requests pile up in the queue while no worker runs
    rng = np.random.default_rng(4)
    inputs = [[float(v) for v in rng.uniform(-1, 1, 4)] for _ in range(N)]
    ids = [stack.request([to_fixed(v, 16) for v in x]) for x in inputs]
    wait_for(lambda: all(stack.row_status(i) == "queued" for i in ids), 30, "all requests queued")
    stack.start_worker("batcher")

    session = ort.InferenceSession(str(EXAMPLE_MODEL), providers=["CPUExecutionProvider"])
    for request_id, x in zip(ids, inputs, strict=True):
        fulfilled, output, err = stack.wait_result(request_id, timeout=60)
        assert fulfilled and err == b""
        want = float(session.run(None, {"input": np.array([x], dtype=np.float32)})[0][0, 0])
        assert from_fixed(output[0], 16) == pytest.approx(want, abs=2**-15)
    with stack.db.session() as s:
        rows = list(
            s.execute(
                select(InferenceRequest.attempts, InferenceRequest.inferred_at).where(
                    InferenceRequest.request_id.in_(ids)
                )
            )
        )
    assert [attempts for attempts, _ in rows] == [1] * N  # each claimed exactly once
    # A batch writes one finish time for all its rows: fewer batches than requests.
    assert len({inferred_at for _, inferred_at in rows}) < N
    for request_id in ids:
        wait_for(lambda rid=request_id: stack.row_status(rid) == "confirmed", what="confirmed")
