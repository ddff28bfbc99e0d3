"""The resender: fee bumps (same nonce and call, higher fee), dropped txs (row ready
again), nonce gaps (a 0-value self-transfer), and forgotten txs (same bytes again)."""

from __future__ import annotations

from typing import cast

from eth_account import Account
from hexbytes import HexBytes

from oracle.db import Database
from oracle.relayer import Relayer
from oracle.types import RequestStatus, TxStatus
from tests.support.chain import rpc
from tests.unit.relayer.parts import Parts


def test_stuck_next_nonce_is_replaced_with_a_higher_fee(parts: Parts) -> None:
    row = parts.request()
    parts.broadcaster.sync_nonce()
    rpc(parts.w3, "evm_setAutomine", [False])
    assert parts.broadcaster.send(row, parts.head())
    (tx,) = parts.store.txs.values()
    first = parts.w3.eth.get_transaction(HexBytes(tx.tx_hash))
    rpc(parts.w3, "anvil_dropTransaction", [tx.tx_hash])  # never mined: looks underpriced
    for _ in range(parts.settings.relayer.bump_after_blocks):
        rpc(parts.w3, "evm_mine")
    seen = parts.store.txs_awaiting_receipt()[0]
    row_before = dict(vars(parts.store.requests[row.id]))
    parts.resender.without_receipt(seen, parts.chain_nonce(), parts.head())
    assert tx.tx_hash != seen.tx_hash and tx.replaced_hashes == [seen.tx_hash]
    bumped = parts.w3.eth.get_transaction(HexBytes(tx.tx_hash))
    assert bumped["nonce"] == first["nonce"] and bumped["input"] == first["input"]
    assert bumped["maxFeePerGas"] > first["maxFeePerGas"]
    assert bumped["maxPriorityFeePerGas"] > first["maxPriorityFeePerGas"]
    assert dict(vars(parts.store.requests[row.id])) == row_before  # the row is not touched
    rpc(parts.w3, "evm_mine")
    assert parts.w3.eth.get_transaction_receipt(HexBytes(tx.tx_hash))["status"] == 1


def test_a_tx_not_yet_stuck_is_left_alone(parts: Parts) -> None:
    row = parts.request()
    parts.broadcaster.sync_nonce()
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.send(row, parts.head())
    (tx,) = parts.store.txs.values()
    tx_hash = tx.tx_hash
    parts.resender.without_receipt(
        parts.store.txs_awaiting_receipt()[0], parts.chain_nonce(), parts.head()
    )
    assert tx.tx_hash == tx_hash and not tx.replaced_hashes


def test_dropped_tx_puts_its_row_back_to_ready(parts: Parts) -> None:
    relayer = Relayer(
        parts.settings,
        cast(Database, None),
        parts.chain.coordinator,
        int(parts.w3.eth.chain_id),
        parts.chain.node,
        store=parts.store,
    )
    row = parts.request()
    rpc(parts.w3, "evm_setAutomine", [False])
    relayer.tick()  # signs, saves and sends the fulfilment
    (tx,) = parts.store.txs.values()
    assert parts.store.requests[row.id].status == RequestStatus.SUBMITTED.value
    rpc(parts.w3, "anvil_dropTransaction", [tx.tx_hash])
    other = parts.attempts.sign(  # another tx takes the nonce
        nonce=tx.nonce, to=Account.create().address, gas_limit=21_000, fees=_fees(parts)
    )
    parts.w3.eth.send_raw_transaction(HexBytes(other.raw))
    rpc(parts.w3, "evm_mine")
    rpc(parts.w3, "anvil_setAutomine", [True])
    relayer.tick()
    assert tx.status == TxStatus.DROPPED.value
    # Back to ready, then (same round) re-checked and sent again with the next nonce.
    stored = parts.store.requests[row.id]
    assert stored.status == RequestStatus.SUBMITTED.value and stored.fulfil_tx_id != tx.id
    resent = parts.store.txs[stored.fulfil_tx_id]  # type: ignore[index]
    assert resent.nonce == tx.nonce + 1


def _fees(parts: Parts):  # type: ignore[no-untyped-def]
    return parts.attempts.fees(parts.head())


def test_nonce_gap_gets_a_filler(parts: Parts) -> None:
    first, second = parts.request(), parts.request()
    parts.broadcaster.sync_nonce()
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.send(first, parts.head())
    parts.broadcaster.send(second, parts.head())
    lost, waiting = sorted(parts.store.txs.values(), key=lambda t: t.nonce)
    lost_hash = lost.tx_hash
    rpc(parts.w3, "anvil_dropTransaction", [lost_hash])  # anvil drops the later one too:
    parts.w3.eth.send_raw_transaction(HexBytes(waiting.raw))  # the node holds it again
    parts.store.mark_dropped(lost.id)  # judged dropped: nothing of ours will use its nonce
    rpc(parts.w3, "evm_mine")
    assert parts.chain_nonce() == lost.nonce  # the later tx waits behind the gap
    parts.resender.fill_gaps(parts.chain_nonce(), parts.head())
    rpc(parts.w3, "evm_mine")
    assert parts.chain_nonce() == waiting.nonce + 1  # both nonces used now
    filler = parts.store.txs[lost.id]  # the stale row of that nonce, reused
    assert lost_hash in (filler.replaced_hashes or [])
    assert parts.w3.eth.get_transaction(HexBytes(filler.tx_hash))["to"] == parts.chain.node.address
    assert parts.store.requests[first.id].fulfil_tx_id is None  # detached
    receipt = parts.w3.eth.get_transaction_receipt(HexBytes(waiting.tx_hash))
    assert receipt["status"] == 1


def test_forgotten_tx_is_sent_again_with_the_same_bytes(parts: Parts) -> None:
    row = parts.request()
    parts.broadcaster.sync_nonce()
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.send(row, parts.head())
    (tx,) = parts.store.txs.values()
    tx_hash, raw = tx.tx_hash, tx.raw
    rpc(parts.w3, "anvil_dropTransaction", [tx_hash])  # evicted from the node's pool
    parts.resender.settings = parts.settings.model_copy(
        update={
            "relayer": parts.settings.relayer.model_copy(
                update={"rebroadcast_after_s": 0.001, "bump_after_blocks": 100}
            )
        }
    )
    parts.resender.without_receipt(
        parts.store.txs_awaiting_receipt()[0], parts.chain_nonce(), parts.head()
    )
    assert tx.tx_hash == tx_hash and tx.raw == raw and not tx.replaced_hashes
    rpc(parts.w3, "evm_mine")
    assert parts.w3.eth.get_transaction_receipt(HexBytes(tx_hash))["status"] == 1
