"""Relayer faults against the real node: an empty signer, an underpriced transaction, a
transaction dropped from the mempool."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select

from oracle.db import Transaction
from oracle.dev.keys import NODE_KEY
from oracle.types import HealthCode, HealthProblem, RequestStatus, TxStatus
from tests.support import db
from tests.support.chain import INPUT, fulfilled_events, rpc, send_request
from tests.support.db import row
from tests.support.node import start_node, with_relayer_settings
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

NODE = Account.from_key(NODE_KEY)


def test_empty_signer_balance_is_reported_and_the_work_waits(stack: Stack) -> None:
    w3 = stack.w3
    funded = w3.eth.get_balance(NODE.address)
    rpc(w3, "anvil_setBalance", [NODE.address, hex(0)])
    node = start_node(stack, confirmations=0)
    try:
        request_id = stack.request(INPUT)
        problems: list[HealthProblem] = []

        def reported() -> bool:
            problems[:] = node.healthy()[1]
            return any(p.code == HealthCode.SIGNER_UNFUNDED for p in problems)

        wait_for(reported, 60, "the empty balance to be reported")
        waiting = row(stack, request_id)
        assert waiting is not None and waiting.status == RequestStatus.SUBMITTED.value
        assert fulfilled_events(stack, request_id) == []  # nothing sent, nothing lost
        with stack.db.session() as s:
            assert set(s.scalars(select(Transaction.status))) == {TxStatus.SIGNED.value}

        rpc(w3, "anvil_setBalance", [NODE.address, hex(funded)])
        stack.wait_result(request_id, timeout=60)
        wait_for(lambda: node.healthy()[0], 30, "the node to be healthy again")
        assert len(fulfilled_events(stack, request_id)) == 1
    finally:
        node.stop()


def test_underpriced_transaction_is_replaced_with_a_higher_fee(stack: Stack) -> None:
    w3 = stack.w3
    rpc(w3, "anvil_setAutomine", [False])
    node: Any = None
    try:
        node = start_node(stack, confirmations=0)
        with_relayer_settings(node, bump_after_blocks=2, rebroadcast_after_s=600.0)
        request_id_holder: list[int] = []
        nonce = w3.eth.get_transaction_count(stack.requester.account.address, "pending")
        fn = stack.requester.consumer.functions.requestPrediction(
            bytes.fromhex(stack.model_id[2:]), INPUT, 0, 300_000
        )
        tx = fn.build_transaction(
            {
                "from": stack.requester.account.address,
                "value": stack.coordinator.quote_fee(stack.model_id, 0, 300_000),
                "nonce": nonce,
                "gas": 400_000,
                "chainId": w3.eth.chain_id,
            }
        )
        w3.eth.send_raw_transaction(stack.requester.account.sign_transaction(tx).raw_transaction)
        rpc(w3, "evm_mine")
        request_id_holder.append(
            int(stack.coordinator.contract.functions.nextRequestId().call()) - 1
        )
        request_id = request_id_holder[0]
        wait_for(
            lambda: (
                (r := row(stack, request_id)) is not None
                and r.status == RequestStatus.SUBMITTED.value
            ),
            60,
            "a fulfilment to be sent",
        )
        with stack.db.session() as s:
            first = s.scalars(select(Transaction)).one()
            first_hash, first_fee = first.tx_hash, int(first.max_fee_per_gas)
        # The base fee jumps past what the fulfilment offered: it cannot be mined.
        spike = first_fee * 4
        for _ in range(3):
            rpc(w3, "anvil_setNextBlockBaseFeePerGas", [hex(spike)])
            rpc(w3, "evm_mine")

        def replaced() -> bool:
            with stack.db.session() as s:
                tx = s.scalars(select(Transaction)).one()
                return tx.tx_hash != first_hash and int(tx.max_fee_per_gas) > spike

        wait_for(replaced, 60, "the fulfilment to be re-signed with a higher fee")

        def mined() -> bool:
            rpc(w3, "anvil_setNextBlockBaseFeePerGas", [hex(spike)])
            rpc(w3, "evm_mine")
            return bool(fulfilled_events(stack, request_id))

        wait_for(mined, 60, "the replacement to be mined", interval=0.3)
        assert len(fulfilled_events(stack, request_id)) == 1
        with stack.db.session() as s:
            txs = list(s.scalars(select(Transaction)))
        assert len(txs) == 1 and txs[0].nonce == first.nonce  # same nonce, replaced in place
        assert first_hash in (txs[0].replaced_hashes or [])
    finally:
        if node is not None:
            node.stop()
        rpc(w3, "anvil_setAutomine", [True])


def test_transaction_dropped_from_the_mempool_is_re_sent(stack: Stack) -> None:
    w3 = stack.w3
    rpc(w3, "anvil_setAutomine", [False])
    node: Any = None
    try:
        node = start_node(stack, confirmations=0)
        with_relayer_settings(node, rebroadcast_after_s=2.0, bump_after_blocks=1000)
        request_id = send_request(stack)

        def broadcast() -> bool:
            with stack.db.session() as s:
                return s.scalars(select(Transaction.status)).first() == TxStatus.BROADCAST.value

        wait_for(broadcast, 60, "a fulfilment to be broadcast")
        with stack.db.session() as s:
            sent = s.scalars(select(Transaction)).one()
            sent_hash, sent_nonce = sent.tx_hash, sent.nonce
        rpc(w3, "anvil_dropTransaction", [sent_hash])  # evicted: no node knows it any more
        assert w3.eth.get_block("pending")["transactions"] == []
        rpc(w3, "evm_mine")
        assert fulfilled_events(stack, request_id) == []

        def landed() -> bool:
            rpc(w3, "evm_mine")
            return bool(fulfilled_events(stack, request_id))

        wait_for(landed, 60, "the dropped fulfilment to be re-sent and mined", interval=0.5)
        assert len(fulfilled_events(stack, request_id)) == 1
        with stack.db.session() as s:
            txs = list(s.scalars(select(Transaction)))
        # the same signed bytes again: one nonce, one hash, nothing signed twice
        assert [(t.tx_hash, t.nonce) for t in txs] == [(sent_hash, sent_nonce)]
    finally:
        if node is not None:
            node.stop()
        rpc(w3, "anvil_setAutomine", [True])


def test_nonce_gap_left_by_a_tx_judged_dropped_is_filled(stack: Stack) -> None:
    """A reorg between reading the nonce and the receipt can make the relayer judge a tx
    dropped that then never lands: its nonce would hold back every later one. Here the
    judgement is forced on a tx evicted from the mempool; the gap must be filled."""
    w3 = stack.w3
    rpc(w3, "anvil_setAutomine", [False])
    node: Any = None
    try:
        node = start_node(stack, confirmations=0)
        first = send_request(stack)

        def broadcast(count: int) -> bool:
            with stack.db.session() as s:
                statuses = list(s.scalars(select(Transaction.status)))
            return statuses.count(TxStatus.BROADCAST.value) == count

        wait_for(lambda: broadcast(1), 60, "the first fulfilment to be broadcast")
        with stack.db.session() as s:
            lost = s.scalars(select(Transaction)).one()
            lost_id, lost_hash, lost_nonce = lost.id, lost.tx_hash, lost.nonce
        node.stop()
        rpc(w3, "anvil_dropTransaction", [lost_hash])
        # the wrong verdict: its request goes back to the queue
        node.relayer.resender.dropped(lost_id)

        node = start_node(stack, confirmations=0)

        def answered() -> bool:
            rpc(w3, "evm_mine")
            return bool(fulfilled_events(stack, first))

        wait_for(answered, 60, "the request to be answered past the gap", interval=0.5)
        assert len(fulfilled_events(stack, first)) == 1
        with stack.db.session() as s:
            txs = {t.nonce: t for t in s.scalars(select(Transaction))}
        filler = txs[lost_nonce]
        assert db.request_of_tx(stack, filler.id) is None
        assert lost_hash in (filler.replaced_hashes or [])
        assert w3.eth.get_transaction(filler.tx_hash)["to"] == NODE.address  # 0-value to self
        assert sorted(txs) == list(range(lost_nonce, lost_nonce + len(txs)))  # no gap
        assert w3.eth.get_transaction_count(NODE.address, "latest") == max(txs) + 1
    finally:
        if node is not None:
            node.stop()
        rpc(w3, "anvil_setAutomine", [True])
