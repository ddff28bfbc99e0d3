"""A failure is the answer's, never the round's: an answer whose simulation fails every time
is retried alone (more gas, up to the cap), then answered with an error or given up with a
reason, while every other ready answer goes out in the same round; a refusal that passes by
waiting is tried again after a bounded backoff. Real anvil and Coordinator, in-memory store."""

from __future__ import annotations

from typing import Any

import pytest
from hexbytes import HexBytes

from oracle.relayer import broadcaster as broadcaster_module
from oracle.relayer.retries import RetryBook
from oracle.settings import Settings
from oracle.types import HealthCode, RequestStatus
from tests.support.chain import mine
from tests.unit.relayer.parts import Parts


def _with_relayer(settings: Settings, **values: Any) -> Settings:
    return settings.model_copy(update={"relayer": settings.relayer.model_copy(update=values)})


def test_an_answer_that_cannot_land_does_not_hold_up_the_others(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request whose answer needs more gas than the node's cap (its callback gas alone is
    over it): it is tried alone, then as an error answer, then given up with a reason code,
    all in the round that sends the four ordinary answers as one batch."""
    parts.broadcaster.settings = _with_relayer(parts.settings, max_answer_gas=1_000_000)
    ordinary = [parts.request() for _ in range(2)]
    greedy = parts.request(gas=1_900_000)
    ordinary += [parts.request() for _ in range(2)]
    calls: list[int] = []
    real_call = parts.w3.eth.call

    def counting_call(tx: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(int(tx.get("gas", 0)))
        return real_call(tx, *args, **kwargs)

    monkeypatch.setattr(parts.w3.eth, "call", counting_call)
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send_ready(parts.head()) == 1  # one batch, nothing for greedy
    (tx,) = parts.store.txs.values()
    assert {parts.store.requests[r.id].fulfil_tx_id for r in ordinary} == {tx.id}
    row = parts.store.requests[greedy.id]
    assert row.status == RequestStatus.ABANDONED.value
    assert "answer needs more gas than the node's cap" in (row.error or "")
    assert len(calls) <= 4  # the batch, greedy alone, greedy as an error answer: bounded
    assert len(parts.broadcaster.retries) == 0
    # The next round spends nothing on it.
    calls.clear()
    assert parts.broadcaster.send_ready(parts.head()) == 0 and calls == []


def test_an_answer_short_of_gas_is_retried_alone_with_twice_the_gas(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = parts.request()
    # The allowance undershoots (as it might against another chain's Coordinator).
    monkeypatch.setattr(broadcaster_module, "batch_gas_limit", lambda rows, data: 100_000)
    parts.broadcaster.sync_nonce()
    assert parts.broadcaster.send(row, parts.head())
    (tx,) = parts.store.txs.values()
    sent = parts.w3.eth.get_transaction(HexBytes(tx.tx_hash))
    assert sent["gas"] in (200_000, 400_000, 800_000)  # doubled until it simulated cleanly
    assert parts.mined(tx.tx_hash)["status"] == 1
    assert parts.store.requests[row.id].status == RequestStatus.SUBMITTED.value


def test_a_refusal_that_passes_by_waiting_backs_off_and_has_a_bound(parts: Parts) -> None:
    parts.broadcaster.settings = _with_relayer(
        parts.settings, max_transient_retries=3, retry_backoff_max_blocks=2
    )
    parts.broadcaster.retries = RetryBook(3, 2)
    parts.health.retries = parts.broadcaster.retries
    row = parts.request()
    coordinator = parts.chain.coordinator.contract
    node = parts.chain.node
    tx = coordinator.functions.deregisterNode().build_transaction(
        {
            "from": node.address,
            "nonce": parts.w3.eth.get_transaction_count(node.address),
            "chainId": parts.w3.eth.chain_id,
        }
    )
    parts.w3.eth.send_raw_transaction(node.sign_transaction(tx).raw_transaction)
    parts.broadcaster.sync_nonce()
    tries = 0
    for _ in range(12):
        if parts.broadcaster.retries.due(row.id, parts.head().number):
            tries += 1
        assert parts.broadcaster.send_ready(parts.head()) == 0
        if parts.store.requests[row.id].status == RequestStatus.ABANDONED.value:
            break
        assert parts.health.retrying() == {"NotActiveNode": 1}
        assert parts.health.problem is not None
        assert parts.health.problem.code == HealthCode.FULFIL_BLOCKED
        mine(parts.w3, 1)
    assert tries == 4  # three retries after the first refusal, then given up
    closed = parts.store.requests[row.id]
    assert closed.status == RequestStatus.ABANDONED.value
    assert "NotActiveNode, 3 retries used" in (closed.error or "")
    assert parts.health.retrying() == {}


def test_the_retry_book_doubles_its_backoff_up_to_the_cap() -> None:
    book = RetryBook(max_transient=5, backoff_max_blocks=4)
    waits = []
    head = 100
    for _ in range(5):
        assert book.transient(7, "NotAssignedNode", head)
        nxt = next(h for h in range(head, head + 100) if book.due(7, h))
        waits.append(nxt - head)
        head = nxt
    assert waits == [1, 2, 4, 4, 4]
    assert not book.transient(7, "NotAssignedNode", head)  # the sixth: given up
    assert book.due(7, head) and book.reasons() == {}
