"""Property: whatever sequence of requests, mined blocks, reorgs and rollbacks (within the
finality depth) the chain goes through, once it settles the database equals the canonical
chain: one row per canonical request, in its canonical block, answered exactly once.

The finality setting is deeper than any sequence here can rewind (at most 12 operations of
at most 3 blocks), so every reorg is one the node must follow rather than halt on; deeper
reorgs have their own test in ``test_reorg.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from oracle.db import InferenceRequest
from oracle.types import RequestStatus
from tests.support import db
from tests.support.chain import logs, rpc
from tests.support.node import start_node
from tests.support.stack import Stack
from tests.support.wait import wait_for

# many reorg sequences against the node: `make faults` only
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow_fault]

FINALITY = 40
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.just(0)),
        st.tuples(st.just("mine"), st.integers(1, 3)),
        st.tuples(st.just("reorg"), st.integers(1, 3)),  # same height, new blocks
        st.tuples(st.just("rollback"), st.integers(1, 3)),  # shorter chain
    ),
    min_size=4,
    max_size=12,
)


def mismatch(stack: Stack) -> str | None:
    """How the database differs from the canonical chain, or None once they agree."""
    rpc(stack.w3, "evm_mine")
    requested = logs(stack, "InferenceRequested")
    fulfilled = logs(stack, "InferenceFulfilled")
    if set(requested) != set(fulfilled):
        return f"unanswered on chain: {sorted(set(requested) - set(fulfilled))}"
    with stack.db.session() as s:
        rows = list(s.scalars(select(InferenceRequest)))
    live = {r.request_id: r for r in rows if r.status != RequestStatus.REORGED.value}
    if set(live) != set(requested):
        return f"live rows {sorted(live)} but canonical requests {sorted(requested)}"
    wrong = {
        rid: (r.status, r.block_number, db.fulfilled_block(stack, r))
        for rid, r in live.items()
        if r.status != RequestStatus.CONFIRMED.value
        or r.block_number != requested[rid][0]
        or db.fulfilled_block(stack, r) != fulfilled[rid][0]
    }
    return f"rows differ from the chain: {wrong}" if wrong else None


@pytest.fixture
def base_block(stack: Stack) -> Iterator[int]:
    """The head once the contracts are deployed and the node runs: never rewound past."""
    running = start_node(stack, confirmations=2, finality_depth=FINALITY)
    yield stack.w3.eth.block_number
    running.stop()


@settings(
    max_examples=8,
    deadline=None,
    database=None,  # the chain differs from run to run: a saved example means little
    # each example drives a live chain for seconds; the failing sequence is in the message
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_database_equals_the_canonical_chain_after_any_reorg_sequence(
    stack: Stack, base_block: int, ops: list[tuple[str, int]]
) -> None:
    for op, n in ops:
        depth = min(n, stack.w3.eth.block_number - base_block)
        if op == "request":
            stack.request([1 << 14, -(1 << 13), 1 << 12, 0])
        elif op == "mine":
            for _ in range(n):
                rpc(stack.w3, "evm_mine")
        elif op == "reorg" and depth:
            rpc(stack.w3, "anvil_reorg", [depth, []])  # same height, fresh blocks
        elif op == "rollback" and depth:
            rpc(stack.w3, "anvil_rollback", [depth])  # a shorter chain
    try:
        wait_for(lambda: mismatch(stack) is None, 120, "the node to settle", interval=0.3)
    except AssertionError:
        raise AssertionError(f"after {ops}: {mismatch(stack)}") from None
    for blocks in logs(stack, "InferenceFulfilled").values():
        assert len(blocks) == 1  # nothing answered twice on the canonical chain
