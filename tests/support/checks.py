"""Checks the fault tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import db
from tests.support.chain import fulfilled_events
from tests.support.wait import wait_for

if TYPE_CHECKING:
    from tests.support.stack import Stack


def wait_settled(stack: Stack, ids: list[int], timeout: float = 150.0) -> None:
    """Wait until every request's row is final and its callback is seen on chain."""

    def unsettled() -> dict[int, str | None]:
        return {
            i: status
            for i in ids
            if not db.is_final(status := db.row_status(stack, i))
            or not stack.requester.result(i)[0]
        }

    left: dict[int, str | None] = {}

    def settled() -> bool:
        left.clear()
        left.update(unsettled())
        return not left

    try:
        wait_for(settled, timeout, f"all of {len(ids)} requests settled", interval=0.25)
    except AssertionError as e:
        raise AssertionError(f"{e}; unsettled (request id: row status): {left}") from None


def answered_exactly_once(stack: Stack, ids: list[int], timeout: float = 150.0) -> None:
    """Every request in ``ids`` settled, answered by exactly one ``InferenceFulfilled``
    event, and sent by the node in exactly one transaction (the contract alone would keep
    the events to one; the transaction count is the node's doing)."""
    wait_settled(stack, ids, timeout)
    events = {i: len(fulfilled_events(stack, i)) for i in ids}
    assert all(n == 1 for n in events.values()), f"InferenceFulfilled events: {events}"
    txs = {i: [tx.tx_hash for tx in db.fulfilment_txs(stack, i)] for i in ids}
    assert all(len(hashes) == 1 for hashes in txs.values()), f"fulfilment txs: {txs}"
    stray = db.stray_fulfilments(stack)
    assert not stray, f"fulfilments signed beside the one each row points at: {stray}"
