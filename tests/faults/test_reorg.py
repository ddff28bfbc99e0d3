"""Chain reorganisations against the real node: anvil with automine off, mined by hand.

``evm_snapshot``/``evm_revert`` plus fresh blocks make a competing fork; the node must end
with every canonical request answered exactly once and nothing answered that is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import select
from web3 import Web3

from oracle.chain.devkeys import REQUESTER_KEY
from oracle.db import ChainCursor, InferenceRequest, Transaction
from oracle.types import Mode, RequestStatus, TxStatus
from tests.conftest import Stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]
GAS = 300_000


def rpc(w3: Web3, method: str, params: list[Any] | None = None) -> Any:
    response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(w3, "evm_mine")


def signed_request(stack: Stack, nonce: int) -> HexBytes:
    """A request tx from the example consumer, signed but not sent."""
    account = Account.from_key(REQUESTER_KEY)
    fn = stack.requester.consumer.functions.requestPrediction(
        bytes.fromhex(stack.model_id[2:]), INPUT, int(Mode.NONE), GAS
    )
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": stack.coordinator.quote_fee(stack.model_id, Mode.NONE, GAS),
            "nonce": nonce,
            "gas": 400_000,
            "chainId": stack.w3.eth.chain_id,
        }
    )
    return HexBytes(account.sign_transaction(tx).raw_transaction)


def row(stack: Stack, request_id: int) -> InferenceRequest | None:
    with stack.db.session() as s:
        found = s.scalars(
            select(InferenceRequest).where(InferenceRequest.request_id == request_id)
        ).first()
        if found is not None:
            s.expunge(found)
        return found


def fulfilled_events(stack: Stack, request_id: int) -> list[Any]:
    return list(
        stack.coordinator.contract.events.InferenceFulfilled().get_logs(
            from_block=0, argument_filters={"requestId": request_id}
        )
    )


def all_txs_settled(stack: Stack) -> bool:
    with stack.db.session() as s:
        statuses = set(s.scalars(select(Transaction.status)))
    return statuses <= {TxStatus.CONFIRMED.value, TxStatus.REVERTED.value, TxStatus.DROPPED.value}


@pytest.fixture
def manual_chain(stack: Stack) -> Iterator[Stack]:
    rpc(stack.w3, "anvil_setAutomine", [False])
    yield stack
    rpc(stack.w3, "anvil_setAutomine", [True])


def start_node(stack: Stack, **chain: Any) -> Any:
    from oracle.node import Node

    settings = stack.settings.model_copy(
        update={
            "chain": stack.settings.chain.model_copy(update=chain),
            "relayer": stack.settings.relayer.model_copy(update={"rebroadcast_after_s": 1.0}),
            # a job whose broker message was lost is handed out again quickly
            "worker": stack.settings.worker.model_copy(update={"requeue_after_s": 5.0}),
        }
    )
    node = Node(settings, serve_status=False)
    node.start()
    return node


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
    wait_for(
        lambda: (
            (r := row(stack, request_id)) is not None and r.status == RequestStatus.SUBMITTED.value
        ),
        60,
        "the node to send a fulfilment",
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
        assert any("listener halted" in p for p in problems), problems
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
        nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
        w3.eth.send_raw_transaction(signed_request(stack, nonce))
        mine(w3, 3)  # the request, then the confirmation depth on top of it
        request_id = int(stack.coordinator.contract.functions.nextRequestId().call()) - 1
        wait_for(
            lambda: (
                (r := row(stack, request_id)) is not None
                and r.status == RequestStatus.SUBMITTED.value
            ),
            60,
            "the fulfilment to be sent",
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

        def confirmed() -> bool:
            mine(w3)
            r = row(stack, request_id)
            return r is not None and r.status == RequestStatus.CONFIRMED.value

        wait_for(confirmed, 60, "the fulfilment to be re-sent and confirmed", interval=0.3)
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
        nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
        w3.eth.send_raw_transaction(signed_request(stack, nonce))
        mine(w3, 2)
        request_id = int(stack.coordinator.contract.functions.nextRequestId().call()) - 1
        wait_for(
            lambda: (
                (r := row(stack, request_id)) is not None
                and r.status == RequestStatus.SUBMITTED.value
            ),
            60,
            "the fulfilment to be sent",
        )
        snapshot = rpc(w3, "evm_snapshot")

        def confirmed() -> bool:
            mine(w3)
            r = row(stack, request_id)
            return r is not None and r.status == RequestStatus.CONFIRMED.value

        wait_for(confirmed, 30, "the fulfilment to be confirmed", interval=0.3)
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
        wait_for(confirmed, 60, "the same fulfilment to be re-sent and confirmed", interval=0.3)
        assert len(fulfilled_events(stack, request_id)) == 1
        with stack.db.session() as s:
            assert len(list(s.scalars(select(Transaction)))) == 1  # the same bytes, not a new tx
    finally:
        node.stop()
