"""Chain reorganisations against the real node: anvil with automine off, mined by hand.

``evm_snapshot``/``evm_revert`` plus fresh blocks make a competing fork; the node must end
with every canonical request answered exactly once and nothing answered that is not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import select

from oracle.db import ChainCursor, Transaction
from oracle.dev.keys import REQUESTER_KEY
from oracle.types import HealthCode, RequestStatus, TxStatus
from tests.support.chain import fulfilled_events, mine, rpc, send_request, signed_request
from tests.support.db import all_txs_settled, row, wait_status
from tests.support.node import start_node
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture
def manual_chain(stack: Stack) -> Iterator[Stack]:
    rpc(stack.w3, "anvil_setAutomine", [False])
    yield stack
    rpc(stack.w3, "anvil_setAutomine", [True])


def first_request_on_a_fork(stack: Stack) -> tuple[str, HexBytes, int]:
    """Mine a request, let the node see it and send a fulfilment, then revert the chain
    to before the request: returns (snapshot id, the request's signed bytes, request id)."""
    w3 = stack.w3
    snapshot = rpc(w3, "evm_snapshot")
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    raw = signed_request(stack, nonce)
    w3.eth.send_raw_transaction(raw)
    mine(w3, 2)  # the request, and one block on top (confirmations = 1)
    request_id = int(stack.coordinator.contract.functions.nextRequestId().call()) - 1
    wait_status(
        stack, request_id, RequestStatus.SUBMITTED.value, 60, "the node to send a fulfilment"
    )
    assert rpc(w3, "evm_revert", [snapshot]) is True
    rpc(w3, "anvil_dropAllTransactions")  # the request and the fulfilment leave the mempool
    return snapshot, raw, request_id


def test_reorg_that_drops_a_request_answers_nothing_and_leaves_no_nonce_gap(
    manual_chain: Stack,
) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=1)
    try:
        _, _, request_id = first_request_on_a_fork(stack)
        mine(stack.w3, 3)  # the competing fork, longer, without the request
        wait_for(
            lambda: (
                (r := row(stack, request_id)) is not None
                and r.status == RequestStatus.REORGED.value
            ),
            30,
            "the row to be marked reorged",
        )

        # The dropped fulfilment is re-sent (same bytes), lands and reverts harmlessly, so
        # the next request's fulfilment is not stuck behind a nonce gap.
        def settle() -> bool:
            mine(stack.w3)
            return all_txs_settled(stack)

        wait_for(settle, 60, "the relayer's transactions to settle", interval=0.5)
        assert fulfilled_events(stack, request_id) == []
        r = row(stack, request_id)
        assert r is not None and r.status == RequestStatus.REORGED.value

        nonce = stack.w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address)
        stack.w3.eth.send_raw_transaction(signed_request(stack, nonce))
        mine(stack.w3, 2)
        next_id = int(stack.coordinator.contract.functions.nextRequestId().call()) - 1

        def answered() -> bool:
            mine(stack.w3)
            return bool(fulfilled_events(stack, next_id))

        wait_for(answered, 60, "the next request to be answered", interval=0.3)
    finally:
        node.stop()


def test_reorg_that_moves_a_request_to_another_block_answers_it_once(
    manual_chain: Stack,
) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=1)
    try:
        _, raw, request_id = first_request_on_a_fork(stack)
        mine(stack.w3)  # an empty block first: the request lands at another height
        stack.w3.eth.send_raw_transaction(raw)
        mine(stack.w3)
        moved_to = stack.w3.eth.block_number

        def answered() -> bool:
            mine(stack.w3)
            r = row(stack, request_id)
            return r is not None and r.status == RequestStatus.CONFIRMED.value

        wait_for(answered, 90, "the moved request to be answered", interval=0.3)
        events = fulfilled_events(stack, request_id)
        assert len(events) == 1  # answered exactly once, against the new commitment
        r = row(stack, request_id)
        assert r is not None and r.block_number == moved_to
        assert stack.requester.result(request_id)[0] is True
    finally:
        node.stop()


def test_reorg_shallower_than_confirmations_is_never_seen(manual_chain: Stack) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=4)
    try:
        w3 = stack.w3
        snapshot = rpc(w3, "evm_snapshot")
        nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
        raw = signed_request(stack, nonce)
        w3.eth.send_raw_transaction(raw)
        mine(w3, 2)  # below the confirmation depth: the node must not act on it yet
        request_id = int(stack.coordinator.contract.functions.nextRequestId().call()) - 1
        assert row(stack, request_id) is None
        assert rpc(w3, "evm_revert", [snapshot]) is True
        rpc(w3, "anvil_dropAllTransactions")
        mine(w3)
        w3.eth.send_raw_transaction(raw)
        mine(w3)
        moved_to = w3.eth.block_number

        def answered() -> bool:
            mine(w3)
            r = row(stack, request_id)
            return r is not None and r.status == RequestStatus.CONFIRMED.value

        wait_for(answered, 90, "the request to be answered", interval=0.3)
        r = row(stack, request_id)
        assert r is not None and r.block_number == moved_to and r.attempts == 1
        assert len(fulfilled_events(stack, request_id)) == 1
    finally:
        node.stop()


def test_reorg_deeper_than_finality_halts_and_reports_unhealthy(manual_chain: Stack) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=0, finality_depth=3)
    try:
        w3 = stack.w3
        snapshot = rpc(w3, "evm_snapshot")
        mine(w3, 8)
        head = w3.eth.block_number
        wait_for(lambda: cursor_block(stack) == head, 30, "the listener to catch up")
        assert rpc(w3, "evm_revert", [snapshot]) is True
        mine(w3, 12)  # a longer fork that forks below everything the node remembers
        wait_for(lambda: not node.healthy()[0], 30, "the node to report unhealthy")
        problems = node.healthy()[1]
        assert any(p.code == HealthCode.LISTENER_HALTED for p in problems), problems
        with stack.db.session() as s:
            cursors = list(s.scalars(select(ChainCursor)))
        assert cursors and cursors[0].halted_reason and "finality depth" in cursors[0].halted_reason
    finally:
        node.stop()


def cursor_block(stack: Stack) -> int | None:
    with stack.db.session() as s:
        cursor = s.scalars(select(ChainCursor)).first()
        return cursor.block_number if cursor is not None else None


def test_reorg_that_removes_a_mined_fulfilment_gets_the_same_bytes_sent_again(
    manual_chain: Stack,
) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=2)
    try:
        w3 = stack.w3
        request_id = send_request(stack, 3)  # the request, then the confirmation depth on it
        wait_status(
            stack, request_id, RequestStatus.SUBMITTED.value, 60, "the fulfilment to be sent"
        )
        snapshot = rpc(w3, "evm_snapshot")
        mine(w3)  # the fulfilment is mined, not yet confirmed

        def tx_status() -> str | None:
            with stack.db.session() as s:
                return s.scalars(select(Transaction.status)).first()

        wait_for(lambda: tx_status() == TxStatus.MINED.value, 30, "the relayer to see it mined")
        with stack.db.session() as s:
            original = s.scalars(select(Transaction)).one()
            original_hash, original_nonce = original.tx_hash, original.nonce
        assert fulfilled_events(stack, request_id)
        assert rpc(w3, "evm_revert", [snapshot]) is True  # the block with the fulfilment is gone
        rpc(w3, "anvil_dropAllTransactions")
        assert fulfilled_events(stack, request_id) == []

        wait_status(
            stack,
            request_id,
            RequestStatus.CONFIRMED.value,
            60,
            "the fulfilment to be re-sent and confirmed",
            mining=True,
        )
        assert len(fulfilled_events(stack, request_id)) == 1
        with stack.db.session() as s:
            txs = list(s.scalars(select(Transaction)))
        assert [(t.tx_hash, t.nonce) for t in txs] == [(original_hash, original_nonce)]
    finally:
        node.stop()


def test_reorg_deeper_than_confirmations_removing_a_confirmed_fulfilment_re_sends_it(
    manual_chain: Stack,
) -> None:
    stack = manual_chain
    node = start_node(stack, confirmations=1, finality_depth=10)
    try:
        w3 = stack.w3
        request_id = send_request(stack, 2)
        wait_status(
            stack, request_id, RequestStatus.SUBMITTED.value, 60, "the fulfilment to be sent"
        )
        snapshot = rpc(w3, "evm_snapshot")
        confirmed = RequestStatus.CONFIRMED.value
        wait_status(stack, request_id, confirmed, 30, "the fulfilment to be confirmed", mining=True)
        mine(w3, 2)  # now deeper than the confirmation depth, inside the finality depth
        assert rpc(w3, "evm_revert", [snapshot]) is True
        rpc(w3, "anvil_dropAllTransactions")
        mine(w3, 4)  # a longer fork without the fulfilment (the request is still there)
        assert fulfilled_events(stack, request_id) == []

        def reopened() -> bool:
            mine(w3)
            r = row(stack, request_id)
            return r is not None and r.status != RequestStatus.CONFIRMED.value

        wait_for(reopened, 30, "the relayer to notice its fulfilment is gone", interval=0.3)
        wait_status(
            stack, request_id, confirmed, 60, "the same fulfilment to be re-confirmed", mining=True
        )
        assert len(fulfilled_events(stack, request_id)) == 1
        with stack.db.session() as s:
            assert len(list(s.scalars(select(Transaction)))) == 1  # the same bytes, not a new tx
    finally:
        node.stop()
