"""The broadcaster: save before send, same bytes again after a crash, nonces, and what a
refused simulation or broadcast does to the row and to health."""

from __future__ import annotations

from typing import Any

import pytest
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from oracle.relayer.attempts import SignedAttempt
from oracle.types import HealthCode, RequestStatus, TxStatus
from tests.support.chain import rpc
from tests.unit.relayer.parts import Parts


def _known_to_node(parts: Parts, tx_hash: str) -> bool:
    try:
        parts.w3.eth.get_transaction(HexBytes(tx_hash))
    except TransactionNotFound:
        return False
    return True


def test_tx_is_saved_and_row_submitted_before_the_node_has_it(parts: Parts) -> None:
    row = parts.request()
    seen_at_save: list[tuple[bool, str]] = []
    save = parts.store.save_fulfilment

    def spy(r: Any, attempt: SignedAttempt) -> int:
        seen_at_save.append((_known_to_node(parts, attempt.tx_hash), attempt.tx_hash))
        return save(r, attempt)

    parts.store.save_fulfilment = spy  # type: ignore[method-assign]
    assert parts.broadcaster.send(row, parts.head())
    ((known, tx_hash),) = seen_at_save
    assert not known  # saved first ...
    assert _known_to_node(parts, tx_hash)  # ... then sent
    tx = parts.store.tx_by_hash(tx_hash)
    assert tx.status == TxStatus.BROADCAST.value and tx.broadcast_block is not None
    stored = parts.store.requests[row.id]
    assert stored.status == RequestStatus.SUBMITTED.value and stored.fulfil_tx_id == tx.id


def test_a_row_changed_while_signing_saves_and_sends_nothing(parts: Parts) -> None:
    row = parts.request()
    parts.store.requests[row.id].status = RequestStatus.REORGED.value  # the listener moved it
    nonce = parts.chain_nonce("pending")
    with pytest.raises(Exception, match="changed while signing"):
        parts.broadcaster.send(row, parts.head())
    assert parts.store.txs == {} and parts.chain_nonce("pending") == nonce


def test_saved_but_unsent_tx_goes_out_again_with_the_same_bytes(parts: Parts) -> None:
    row = parts.request()
    parts.broadcaster.sync_nonce()
    broadcast = parts.broadcaster.broadcast
    parts.broadcaster.broadcast = lambda *a, **k: None  # type: ignore[method-assign]
    parts.broadcaster.send(row, parts.head())  # "crashed" after saving, before sending
    parts.broadcaster.broadcast = broadcast  # type: ignore[method-assign]
    (tx,) = parts.store.txs.values()
    assert tx.status == TxStatus.SIGNED.value and not _known_to_node(parts, tx.tx_hash)
    raw = tx.raw
    parts.broadcaster.rebroadcast_saved(parts.head())
    assert _known_to_node(parts, tx.tx_hash) and tx.raw == raw
    assert tx.status == TxStatus.BROADCAST.value
    assert parts.mined(tx.tx_hash)["status"] == 1


def test_nonce_follows_the_database_when_it_is_ahead_of_the_node(parts: Parts) -> None:
    first, second = parts.request(), parts.request()
    parts.broadcaster.sync_nonce()
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.send(first, parts.head())
    (tx,) = parts.store.txs.values()
    rpc(parts.w3, "anvil_dropTransaction", [tx.tx_hash])  # the node lost it; the DB did not
    parts.broadcaster.forget_nonce()
    assert parts.broadcaster.sync_nonce() == tx.nonce + 1
    parts.broadcaster.send(second, parts.head())
    assert sorted(t.nonce for t in parts.store.txs.values()) == [tx.nonce, tx.nonce + 1]


def test_a_cancelled_request_is_closed_not_sent(parts: Parts) -> None:
    row = parts.request()
    parts.store.requests[row.id].request_id = row.request_id + 1000  # no such request
    row.request_id += 1000
    assert not parts.broadcaster.send(row, parts.head())
    assert parts.store.txs == {}
    assert parts.store.requests[row.id].status == RequestStatus.CANCELLED.value


def test_unfunded_signer_is_reported_as_such(parts: Parts) -> None:
    row = parts.request()
    rpc(parts.w3, "anvil_setBalance", [parts.chain.node.address, "0x1"])
    parts.broadcaster.send(row, parts.head())
    problem = parts.health.problem
    assert problem is not None and problem.code is HealthCode.SIGNER_UNFUNDED
    (tx,) = parts.store.txs.values()
    assert tx.status == TxStatus.SIGNED.value  # kept, sent again on the next round
