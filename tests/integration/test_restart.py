"""The node process killed mid-stream resumes with nothing lost and nothing sent twice."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from oracle.db import InferenceRequest, Transaction
from oracle.dev.processes import OracleProcess
from oracle.fixedpoint import to_fixed
from tests.conftest import Stack, wait_for

pytestmark = pytest.mark.integration


def start_node(stack: Stack, n: int) -> OracleProcess:
    return stack.start_node_process(f"node{n}")


def confirmed(stack: Stack) -> int:
    with stack.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(InferenceRequest)
                .where(InferenceRequest.status == "confirmed")
            )
            or 0
        )


@pytest.mark.faults
def test_listener_killed_mid_stream_resumes_without_loss_or_duplicates(stack: Stack) -> None:
    node = start_node(stack, 1)
    try:
        first = [stack.request([to_fixed(i / 10, 16)] * 4) for i in range(6)]
        wait_for(lambda: confirmed(stack) >= 2, timeout=60, what="some requests answered")
        node.kill()  # SIGKILL: no chance to clean up
        # Requests keep arriving while the node is down.
        second = [stack.request([to_fixed(-i / 10, 16)] * 4) for i in range(6)]
    finally:
        node.stop()
    node = start_node(stack, 2)
    try:
        wait_for(lambda: confirmed(stack) == 12, timeout=90, what="all 12 requests confirmed")
    finally:
        node.stop()
    fulfilled = stack.coordinator.contract.events.InferenceFulfilled().get_logs(from_block=0)
    counts = Counter(int(ev["args"]["requestId"]) for ev in fulfilled)
    assert sorted(counts) == sorted(first + second)
    assert set(counts.values()) == {1}
    for request_id in first + second:
        fulfilled_ok, output, err = stack.requester.result(request_id)
        assert fulfilled_ok and err == b"" and len(output) == 1
    with stack.db.session() as s:
        rows = s.scalar(select(func.count()).select_from(InferenceRequest))
        assert rows == 12
        # One landed transaction per request; every nonce used once.
        landed = s.execute(
            select(Transaction.id, func.count(InferenceRequest.id))
            .outerjoin(InferenceRequest, InferenceRequest.fulfil_tx_id == Transaction.id)
            .where(Transaction.status == "confirmed")
            .group_by(Transaction.id)
        ).all()
        assert len(landed) == 12 and all(n == 1 for _, n in landed)
