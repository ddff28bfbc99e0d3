"""The node process killed mid-stream resumes with nothing lost and nothing sent twice."""

from __future__ import annotations

from collections import Counter

import pytest

from oracle.dev.processes import OracleProcess
from oracle.fixedpoint import to_fixed
from tests.support import db
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def start_node(stack: Stack, n: int) -> OracleProcess:
    return stack.start_node_process(f"node{n}")


def confirmed(stack: Stack) -> int:
    return db.count_with_status(stack, "confirmed")


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
    assert len(db.rows(stack)) == 12
    # One landed transaction per request; every nonce used once.
    landed = {
        i: [tx.tx_hash for tx in db.fulfilment_txs(stack, i) if tx.status == "confirmed"]
        for i in first + second
    }
    assert all(len(hashes) == 1 for hashes in landed.values()), landed
    assert not db.stray_fulfilments(stack)
