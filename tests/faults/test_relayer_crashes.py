"""The node process dies between the relayer's steps (sign, broadcast, receipt, commit):
after a restart every request is answered once, by one transaction, with no nonce gap."""

from __future__ import annotations

import pytest

from oracle.dev.crashpoints import EXIT_CODE, POINTS
from oracle.dev.keys import NODE_KEY
from oracle.dev.processes import OracleProcess
from tests.support import db
from tests.support.chain import fulfilled_events
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]


def node_process(stack: Stack, name: str, crash_at: str | None) -> OracleProcess:
    return stack.start_node_process(name, **({"ORACLE_CRASH_AT": crash_at} if crash_at else {}))


def one_tx_per_request_and_no_gap(stack: Stack, ids: list[int]) -> None:
    per_request = {i: len(db.fulfilment_txs(stack, i)) for i in ids}
    assert all(count == 1 for count in per_request.values()), per_request
    assert not db.stray_fulfilments(stack)  # nothing signed twice
    nonces = db.tx_nonces(stack)
    chain_nonce = stack.w3.eth.get_transaction_count(
        stack.w3.eth.account.from_key(NODE_KEY).address, "latest"
    )
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))  # contiguous
    assert chain_nonce == nonces[-1] + 1  # every saved tx was mined; none outside the DB


# `make test` runs one crash point (the node has broadcast, its database still says
# signed); `make faults` runs them all.
REPRESENTATIVE = "relayer.after_broadcast"


@pytest.mark.parametrize(
    "point",
    [
        pytest.param(p, marks=() if p == REPRESENTATIVE else pytest.mark.slow_fault)
        for p in sorted(p for p in POINTS if p.startswith("relayer."))
    ],
)
def test_node_killed_between_relayer_steps_resumes_exactly_once(stack: Stack, point: str) -> None:
    crashing = node_process(stack, "node-crash", point)
    try:
        request_id = stack.request(INPUT)
        assert crashing.proc is not None
        wait_for(lambda: crashing.proc.poll() is not None, 60, f"the node to die at {point}")
        assert crashing.proc.returncode == EXIT_CODE
    finally:
        crashing.stop()
    restarted = node_process(stack, "node-restarted", None)
    try:
        stack.wait_result(request_id, timeout=60)
        wait_for(lambda: stack.row_status(request_id) == "confirmed", 30, "the row to be confirmed")
        assert len(fulfilled_events(stack, request_id)) == 1
        after = stack.request(INPUT)  # the next fulfilment is not stuck behind a gap
        stack.wait_result(after, timeout=60)
        wait_for(lambda: stack.row_status(after) == "confirmed", 30, "the next row confirmed")
        one_tx_per_request_and_no_gap(stack, [request_id, after])
    finally:
        restarted.stop()
