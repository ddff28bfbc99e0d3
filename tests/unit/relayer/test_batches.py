"""Batched fulfilment: ready answers go out as one ``fulfillBatch``; an answer the
simulation rejects goes alone; one the chain rejects inside a mined batch is tried again on
its own; a fee bump of a batch carries the same answers; how batches are cut."""

from __future__ import annotations

from hexbytes import HexBytes

from oracle.chain.batch import rejected_in_receipt
from oracle.db import InferenceRequest
from oracle.relayer.attempts import fulfil_calldata
from oracle.relayer.batches import plan_batches, shape_of
from oracle.relayer.gas import answer_gas, planned_transaction_gas
from oracle.settings import RelayerSettings
from oracle.types import Mode, RequestStatus, TxStatus
from tests.support.chain import rpc
from tests.unit.relayer.fake_store import copy
from tests.unit.relayer.parts import Parts


def _selector(parts: Parts, tx_hash: str) -> str:
    data = bytes(parts.w3.eth.get_transaction(HexBytes(tx_hash))["input"])
    return parts.chain.coordinator.contract.get_function_by_selector(data[:4]).fn_name


def _settle_all(parts: Parts) -> None:
    for tx in list(parts.store.txs.values()):
        receipt = parts.mined(tx.tx_hash)
        parts.confirmer.on_receipt(tx, receipt, parts.head())


def test_ready_answers_go_out_as_one_batch_each_answered_once(parts: Parts) -> None:
    rows = [parts.request() for _ in range(5)] + [parts.request(error="bad input")]
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send_ready(parts.head()) == 1
    (tx,) = parts.store.txs.values()
    assert _selector(parts, tx.tx_hash) == "fulfillBatch"
    assert {parts.store.requests[r.id].fulfil_tx_id for r in rows} == {tx.id}
    receipt = parts.mined(tx.tx_hash)
    fulfilled = parts.chain.coordinator.fulfilled_in_receipt(receipt)
    assert sorted(int(e["requestId"]) for e in fulfilled) == sorted(r.request_id for r in rows)
    _settle_all(parts)
    statuses = [parts.store.requests[r.id].status for r in rows]
    assert statuses == [RequestStatus.CONFIRMED.value] * 5 + [RequestStatus.ERRORED.value]
    assert all(parts.store.requests[r.id].callback_succeeded for r in rows)
    assert tx.status == TxStatus.CONFIRMED.value


def test_an_answer_the_simulation_rejects_goes_alone_and_the_rest_together(
    parts: Parts,
) -> None:
    rows = [parts.request() for _ in range(4)]
    gone = rows[1]
    parts.store.requests[gone.id].request_id = gone.request_id + 1000  # no such request
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send_ready(parts.head()) == 1
    (tx,) = parts.store.txs.values()
    assert parts.store.requests[gone.id].status == RequestStatus.CANCELLED.value
    answered = {r.id for r in parts.store.requests.values() if r.fulfil_tx_id == tx.id}
    assert answered == {rows[0].id, rows[2].id, rows[3].id}
    _settle_all(parts)
    assert all(
        parts.store.requests[r.id].status == RequestStatus.CONFIRMED.value
        for r in (rows[0], rows[2], rows[3])
    )


def test_an_answer_rejected_inside_a_mined_batch_is_tried_again_alone(parts: Parts) -> None:
    rows = [parts.request() for _ in range(3)]
    first = rows[0]
    rpc(parts.w3, "evm_setAutomine", [False])
    # Our own lone fulfilment of the first request, signed earlier (a lower nonce) and
    # not known to the store: it lands first in the block, so the batch's copy is rejected.
    nonce = parts.chain_nonce("pending")
    lone = parts.attempts.sign(
        nonce=nonce,
        to=parts.chain.coordinator.address,
        gas_limit=500_000,
        fees=parts.attempts.fees(parts.head()),
        data=fulfil_calldata(parts.chain.coordinator, first),
    )
    parts.w3.eth.send_raw_transaction(HexBytes(lone.raw))
    parts.broadcaster.nonce = nonce + 1
    assert parts.broadcaster.send_ready(parts.head()) == 1  # simulated on the block before
    (tx,) = parts.store.txs.values()
    rpc(parts.w3, "evm_mine")
    receipt = parts.mined(tx.tx_hash)
    assert receipt["status"] == 1
    why = rejected_in_receipt(parts.chain.coordinator, receipt)
    assert set(why) == {first.request_id}
    assert why[first.request_id] is not None and why[first.request_id].name == "RequestNotPending"
    parts.confirmer.on_receipt(tx, receipt, parts.head())
    again = parts.store.requests[first.id]
    assert again.status == RequestStatus.INFERRED.value and again.fulfil_reverts == 1
    assert [parts.store.requests[r.id].status for r in rows[1:]] == [
        RequestStatus.CONFIRMED.value
    ] * 2
    rpc(parts.w3, "evm_setAutomine", [True])
    assert parts.broadcaster.send_ready(parts.head()) == 0  # the chain says it is answered
    done = parts.store.requests[first.id]
    assert done.status == RequestStatus.CONFIRMED.value  # our own lone fulfilment, found


def test_a_fee_bump_of_a_batch_carries_the_same_answers(parts: Parts) -> None:
    rows = [parts.request() for _ in range(3)]
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send_ready(parts.head()) == 1
    (tx,) = parts.store.txs.values()
    old_hash = tx.tx_hash
    old = parts.w3.eth.get_transaction(HexBytes(old_hash))
    assert parts.resender.bump(copy(tx), parts.head())
    stored = parts.store.txs[tx.id]
    new = parts.w3.eth.get_transaction(HexBytes(stored.tx_hash))
    assert stored.tx_hash != old_hash and new["nonce"] == old["nonce"]
    assert bytes(new["input"]) == bytes(old["input"])
    assert int(new["maxFeePerGas"]) > int(old["maxFeePerGas"])
    rpc(parts.w3, "evm_mine")
    _settle_all(parts)
    assert all(parts.store.requests[r.id].status == RequestStatus.CONFIRMED.value for r in rows)


def test_a_dropped_batch_makes_every_answer_ready_again(parts: Parts) -> None:
    rows = [parts.request() for _ in range(3)]
    rpc(parts.w3, "evm_setAutomine", [False])
    parts.broadcaster.sync_nonce()
    parts.broadcaster.send_ready(parts.head())
    (tx,) = parts.store.txs.values()
    parts.resender.dropped(tx.id)
    assert all(parts.store.requests[r.id].status == RequestStatus.INFERRED.value for r in rows)


def _row(gas: int, mode: Mode = Mode.NONE, n_in: int = 4, n_out: int = 1) -> InferenceRequest:
    return InferenceRequest(
        callback_gas_limit=gas,
        mode=int(mode),
        error=None,
        input=[1] * n_in,
        output=[1] * n_out,
        proof=b"\x01" * 2048 if mode == Mode.ZK else None,
    )


def _cut_well(rows: list[InferenceRequest], relayer: RelayerSettings) -> list[int]:
    """Plan, check every batch holds within the limits and is as full as they allow, and
    return the batch sizes."""
    batches = plan_batches(rows, relayer)
    assert [r for b in batches for r in b] == rows  # every row once, in order
    at = 0
    for batch in batches:
        shapes = [shape_of(r) for r in batch]
        assert len(batch) == 1 or planned_transaction_gas(shapes) <= relayer.batch_gas_budget
        assert len(batch) <= relayer.batch_max_items
        at += len(batch)
        if at < len(rows) and len(batch) < relayer.batch_max_items:  # the next did not fit
            more = [*shapes, shape_of(rows[at])]
            assert planned_transaction_gas(more) > relayer.batch_gas_budget
    return [len(b) for b in batches]


def test_batches_are_cut_at_the_item_limit_and_the_gas_budget() -> None:
    relayer = RelayerSettings(batch_max_items=3, batch_gas_budget=2_000_000)
    assert _cut_well([_row(100_000) for _ in range(7)], relayer) == [3, 3, 1]
    zk = [_row(100_000, Mode.ZK) for _ in range(3)]
    assert answer_gas(shape_of(zk[0])) > 1_500_000  # the verifier's cap
    assert _cut_well(zk, relayer) == [1, 1, 1]  # each near the budget
    wide = RelayerSettings(batch_max_items=100, batch_gas_budget=12_000_000)
    sizes = _cut_well([_row(300_000) for _ in range(60)], wide)
    assert len(sizes) == 3 and sum(sizes) == 60


def test_an_answers_gas_grows_with_what_it_carries_and_a_huge_one_goes_alone() -> None:
    small, large = shape_of(_row(100_000)), shape_of(_row(100_000, n_in=1000, n_out=1000))
    assert answer_gas(large) > answer_gas(small) + 1000 * 500
    wide = RelayerSettings(batch_max_items=100, batch_gas_budget=12_000_000)
    mixed = [_row(100_000, n_out=1000 if i % 4 == 0 else 1) for i in range(40)]
    sizes = _cut_well(mixed, wide)
    assert sum(sizes) == 40 and len(sizes) > 1
    huge = RelayerSettings(batch_max_items=100, batch_gas_budget=2_000_000)
    rows = [_row(100_000), _row(1_900_000, n_out=1000), _row(100_000)]
    assert _cut_well(rows, huge) == [1, 1, 1]  # the big one alone, never blocking the others
