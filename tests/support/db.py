"""The database reads the tests need. The ONE place that knows how the node's tables
link a request to the transactions sent for it: when the schema changes, fix it here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from oracle.db import InferenceRequest, Transaction
from oracle.types import RequestStatus, TxStatus
from tests.support.chain import mine
from tests.support.wait import wait_for

if TYPE_CHECKING:
    from tests.support.stack import Stack

# A row in one of these is still being worked on; any other status of a canonical
# request's row is final (confirmed, or however the node names a failure).
IN_PROGRESS = frozenset(
    {
        RequestStatus.SEEN.value,
        RequestStatus.QUEUED.value,
        RequestStatus.INFERRED.value,
        RequestStatus.PROVING.value,
        RequestStatus.PROVED.value,
        RequestStatus.SUBMITTED.value,
    }
)
SETTLED_TX = frozenset({TxStatus.CONFIRMED.value, TxStatus.REVERTED.value, TxStatus.DROPPED.value})


def is_final(status: str | None) -> bool:
    return (
        status is not None
        and status not in IN_PROGRESS
        and status != RequestStatus.REORGED.value  # its request left the chain
    )


def row(stack: Stack, request_id: int) -> InferenceRequest | None:
    """The node's row for ``request_id``, detached from its session."""
    with stack.db.session() as s:
        found = s.scalars(
            select(InferenceRequest).where(InferenceRequest.request_id == request_id)
        ).first()
        if found is not None:
            s.expunge(found)
        return found


def row_status(stack: Stack, request_id: int) -> str | None:
    with stack.db.session() as s:
        return s.scalar(
            select(InferenceRequest.status).where(InferenceRequest.request_id == request_id)
        )


def fulfilled_block(stack: Stack, found: InferenceRequest) -> int | None:
    """The block the node's fulfilment of this row landed in, as the node records it."""
    return found.fulfilled_block


def rows(stack: Stack) -> dict[int, InferenceRequest]:
    """request id -> row, for every row, detached."""
    with stack.db.session() as s:
        found = {r.request_id: r for r in s.scalars(select(InferenceRequest))}
        for r in found.values():
            s.expunge(r)
    return found


def count_with_status(stack: Stack, status: str) -> int:
    with stack.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(InferenceRequest)
                .where(InferenceRequest.status == status)
            )
            or 0
        )


FILLER_GAS = 21_000  # a nonce-gap filler: a 0-value transfer to the node itself


def fulfilment_txs(stack: Stack, request_id: int) -> list[Transaction]:
    """The transaction that answers ``request_id``: the one its row points at (a fee bump
    replaces a transaction's hash, not the row), detached; empty when none. A second
    transaction signed for the same request would be pointed at by no row: see
    :func:`stray_fulfilments`."""
    with stack.db.session() as s:
        found = list(
            s.scalars(
                select(Transaction)
                .join(InferenceRequest, InferenceRequest.fulfil_tx_id == Transaction.id)
                .where(InferenceRequest.request_id == request_id)
            )
        )
        for tx in found:
            s.expunge(tx)
    return found


def stray_fulfilments(stack: Stack) -> list[str]:
    """Hashes of fulfilment transactions no request row points at: the node signed an
    answer that no longer speaks for any request (nonce-gap fillers are not counted; the post
    of an optimistic answer is pointed at by ``post_tx_id``)."""
    with stack.db.session() as s:
        pointed = select(InferenceRequest.fulfil_tx_id).where(
            InferenceRequest.fulfil_tx_id.is_not(None)
        )
        posted = select(InferenceRequest.post_tx_id).where(InferenceRequest.post_tx_id.is_not(None))
        return list(
            s.scalars(
                select(Transaction.tx_hash).where(
                    Transaction.id.not_in(pointed),
                    Transaction.id.not_in(posted),
                    Transaction.gas_limit != FILLER_GAS,
                )
            )
        )


def answer_txs(stack: Stack, request_id: int) -> list[Transaction]:
    """Every transaction of the node's for ``request_id`` its row points at: the one that
    answers it and, for an optimistic answer, the one that posted it; by nonce, detached."""
    found = [
        tx
        for tx in _pointed(stack, request_id, InferenceRequest.post_tx_id)
        + _pointed(stack, request_id, InferenceRequest.fulfil_tx_id)
    ]
    return sorted(found, key=lambda tx: tx.nonce)


def _pointed(stack: Stack, request_id: int, pointer: Any) -> list[Transaction]:
    with stack.db.session() as s:
        found = list(
            s.scalars(
                select(Transaction)
                .join(InferenceRequest, pointer == Transaction.id)
                .where(InferenceRequest.request_id == request_id)
            )
        )
        for tx in found:
            s.expunge(tx)
    return found


def request_of_tx(stack: Stack, tx_id: int) -> int | None:
    """The request id whose row points at the node's transaction ``tx_id``; None for one
    that answers no request (a nonce-gap filler)."""
    with stack.db.session() as s:
        return s.scalar(
            select(InferenceRequest.request_id).where(InferenceRequest.fulfil_tx_id == tx_id)
        )


def tx_statuses(stack: Stack) -> set[str]:
    with stack.db.session() as s:
        return set(s.scalars(select(Transaction.status)))


def tx_nonces(stack: Stack) -> list[int]:
    with stack.db.session() as s:
        return sorted(s.scalars(select(Transaction.nonce)))


def all_txs_settled(stack: Stack) -> bool:
    return tx_statuses(stack) <= SETTLED_TX


def wait_status(
    stack: Stack, request_id: int, status: str, timeout: float, what: str, mining: bool = False
) -> None:
    """Wait for the request's row to reach ``status``; with ``mining``, mine a block each
    poll (automine off) so confirmations advance."""

    def reached() -> bool:
        if mining:
            mine(stack.w3)
        return row_status(stack, request_id) == status

    wait_for(reached, timeout, what, interval=0.3 if mining else 0.05)
