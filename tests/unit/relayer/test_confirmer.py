"""The confirmer: settling confirmed, errored and reverted fulfilments, a reorged-out
confirmed fulfilment sent again with the same bytes, and a late fulfilment of our own."""

from __future__ import annotations

from oracle.db import InferenceRequest, Transaction
from oracle.relayer.attempts import fulfil_calldata
from oracle.relayer.confirmer import MAX_REVERTED_ATTEMPTS
from oracle.types import RequestStatus, TxStatus
from tests.support.chain import rpc
from tests.unit.relayer.parts import Parts


def _sent(parts: Parts, row: InferenceRequest) -> Transaction:
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send(row, parts.head())
    return parts.store.txs[max(parts.store.txs)]


def _settle(parts: Parts, tx: Transaction) -> None:
    parts.mined(tx.tx_hash)
    receipt = parts.confirmer.receipt(tx)
    assert receipt is not None
    parts.confirmer.on_receipt(tx, receipt, parts.head())


def test_confirmed_answer_closes_the_row(parts: Parts) -> None:
    row = parts.request()
    tx = _sent(parts, row)
    _settle(parts, tx)
    stored = parts.store.requests[row.id]
    assert tx.status == TxStatus.CONFIRMED.value and tx.mined_block is not None
    assert stored.status == RequestStatus.CONFIRMED.value and stored.callback_succeeded


def test_confirmed_error_answer_is_errored(parts: Parts) -> None:
    row = parts.request(error="model failed")
    _settle(parts, _sent(parts, row))
    assert parts.store.requests[row.id].status == RequestStatus.ERRORED.value


def test_a_tx_waits_for_its_confirmations(parts: Parts) -> None:
    parts.confirmer.settings = parts.settings.model_copy(
        update={"chain": parts.settings.chain.model_copy(update={"confirmations": 2})}
    )
    row = parts.request()
    tx = _sent(parts, row)
    _settle(parts, tx)
    assert tx.status == TxStatus.MINED.value
    assert parts.store.requests[row.id].status == RequestStatus.SUBMITTED.value
    rpc(parts.w3, "evm_mine")
    rpc(parts.w3, "evm_mine")
    _settle(parts, tx)
    assert tx.status == TxStatus.CONFIRMED.value


def _reverting(parts: Parts, row: InferenceRequest) -> Transaction:
    """A fulfilment of ``row`` that runs out of gas on chain, saved and sent."""
    signed = parts.attempts.sign(
        nonce=parts.chain_nonce("pending"),
        to=parts.chain.coordinator.address,
        gas_limit=40_000,
        fees=parts.attempts.fees(parts.head()),
        data=fulfil_calldata(parts.chain.coordinator, row),
    )
    parts.store.save_fulfilment(row, signed)
    parts.broadcaster.broadcast(signed.tx_hash, signed.raw, parts.head(), parts.confirmer.log)
    return parts.store.tx_by_hash(signed.tx_hash)


def test_reverted_fulfilment_reopens_the_row(parts: Parts) -> None:
    row = parts.request()
    tx = _reverting(parts, row)
    _settle(parts, tx)
    stored = parts.store.requests[row.id]
    assert tx.status == TxStatus.REVERTED.value
    assert stored.status == RequestStatus.INFERRED.value and stored.fulfil_reverts == 1


def test_fulfilment_reverted_too_often_is_abandoned(parts: Parts) -> None:
    row = parts.request()
    parts.store.requests[row.id].fulfil_reverts = MAX_REVERTED_ATTEMPTS - 1
    _settle(parts, _reverting(parts, row))
    stored = parts.store.requests[row.id]
    assert stored.status == RequestStatus.ABANDONED.value
    assert stored.error is not None and "reverted on chain" in stored.error


def test_reorged_out_confirmed_tx_goes_again_with_the_same_bytes(parts: Parts) -> None:
    row = parts.request()
    before = rpc(parts.w3, "evm_snapshot")
    tx = _sent(parts, row)
    _settle(parts, tx)
    assert parts.store.requests[row.id].status == RequestStatus.CONFIRMED.value
    tx_hash, raw = tx.tx_hash, tx.raw
    rpc(parts.w3, "evm_revert", [before])  # the block with our fulfilment is gone
    rpc(parts.w3, "evm_mine")
    rpc(parts.w3, "evm_mine")  # a new head on the other fork
    if parts.confirmer.receipt(tx) is not None:  # pragma: no cover - anvil kept it
        raise AssertionError("anvil re-mined the reverted tx; the test cannot see a reorg")
    parts.confirmer.watch_confirmed(parts.head())
    assert tx.status == TxStatus.SIGNED.value and tx.mined_block is None
    assert parts.store.requests[row.id].status == RequestStatus.SUBMITTED.value
    parts.broadcaster.rebroadcast_saved(parts.head())
    assert tx.tx_hash == tx_hash and tx.raw == raw
    assert parts.mined(tx_hash)["status"] == 1


def test_own_late_fulfilment_is_recorded_as_confirmed(parts: Parts) -> None:
    row = parts.request()
    tx = _sent(parts, row)
    parts.store.mark_dropped(tx.id)  # the node wrongly gave it up; it landed anyway
    stored = parts.store.requests[row.id]
    assert stored.status == RequestStatus.INFERRED.value
    assert not parts.broadcaster.send(InferenceRequest(**_columns(stored)), parts.head())
    stored = parts.store.requests[row.id]
    assert stored.status == RequestStatus.CONFIRMED.value and stored.fulfil_tx_id == tx.id
    assert tx.status == TxStatus.CONFIRMED.value and tx.mined_block is not None
    assert len(parts.store.txs) == 1  # nothing new was signed


def _columns(row: InferenceRequest) -> dict[str, object]:
    return {c.key: getattr(row, c.key) for c in InferenceRequest.__table__.columns}
