"""Every database read and write the relayer makes, behind one interface.

:class:`RelayerStore` names each query by what it finds and each write by what it records.
The SQLAlchemy implementation (:mod:`~oracle.relayer.sql_store`) guarantees that each write
is one database transaction, and that every write to a request row is the compare-and-set
of :mod:`oracle.db.rows`: it lands only if the row is still as the relayer read it (status,
block hash, fulfilment pointer), so a decision taken on an older read never undoes the
listener's reorg handling.

It decides nothing about the chain: which transactions to send, bump or settle, and what a
request becomes, is decided by the broadcaster, confirmer and resender.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from oracle.db import InferenceRequest, Transaction
from oracle.relayer.attempts import SignedAttempt
from oracle.types import RequestStatus

# Rows ready to post: an output or error (plain), or an output with its proof (Zk, or a
# challenged optimistic answer). Posted optimistic answers are also ready once their challenge
# window is over (see ``requests_ready_to_send``).
READY = (RequestStatus.INFERRED.value, RequestStatus.PROVED.value)
# Rows whose confirmed answer a reorg can take back.
ANSWERED = (
    RequestStatus.CONFIRMED.value,
    RequestStatus.ERRORED.value,
    RequestStatus.ABANDONED.value,
    RequestStatus.POSTED.value,
)

RequestValues = Callable[[InferenceRequest], dict[str, Any]]


def ready_status(row: InferenceRequest) -> str:
    """Where a row goes back to when its transaction did not land: re-checked against the
    chain before anything is sent again."""
    if row.claim_node is not None and not (row.challenger and row.proof):
        return RequestStatus.POSTED.value  # our posted answer: finalise (or wait) again
    return RequestStatus.PROVED.value if row.proof else RequestStatus.INFERRED.value


class RelayerStore(Protocol):
    """The relayer's view of the database, for one chain, Coordinator and signer.

    Rows come back detached (reading them costs no further query); writes name the row
    or transaction they change by what the caller read."""

    # -- queries ---------------------------------------------------------------------
    def highest_nonce(self) -> int | None: ...
    def requests_ready_to_send(self, limit: int, head: int) -> list[InferenceRequest]:
        """Rows with an answer to send, and our unchallenged posted optimistic answers whose
        challenge window is over at block ``head``, oldest first."""
        ...

    def posted_requests(self) -> list[InferenceRequest]:
        """Our optimistic answers on chain whose window runs (status ``posted``)."""
        ...

    def mark_challenged(self, row: InferenceRequest, challenger: str, bond: int) -> bool:
        """Our posted answer was challenged: the row owes a proof (status ``challenged``)."""
        ...

    def txs_needing_rebroadcast(self) -> list[Transaction]:
        """Saved and signed but not known to have reached a node, by nonce."""
        ...

    def txs_awaiting_receipt(self) -> list[Transaction]: ...
    def txs_holding_nonces_from(self, nonce: int) -> dict[int, Transaction]: ...
    def confirmed_txs_not_yet_final(self, final_below: int) -> list[Transaction]: ...
    def requests_answered_by(self, tx_id: int) -> list[InferenceRequest]:
        """The rows a transaction answers (several for a batch), by id."""
        ...

    def own_tx_with_hash(self, tx_hash: str, nonce: int | None) -> Transaction | None:
        """Our transaction whose current or replaced hash is ``tx_hash``."""
        ...

    # -- writes ----------------------------------------------------------------------
    def save_fulfilment(self, row: InferenceRequest, attempt: SignedAttempt) -> int:
        """Save the signed tx and mark the row submitted, in one transaction; the tx id.
        Raises TransactionError (saving nothing) if the row changed."""
        ...

    def save_batch(self, rows: list[InferenceRequest], attempt: SignedAttempt) -> int:
        """Save one signed tx answering all ``rows`` and mark each submitted, in one
        transaction; the tx id. Raises TransactionError (saving nothing) if any row changed."""
        ...

    def save_filler(self, attempt: SignedAttempt, stale_id: int | None) -> None:
        """Save a nonce-gap filler, reusing the stale tx row of its nonce if there is one
        (requests pointing at that row are detached)."""
        ...

    def save_replacement(
        self, tx: Transaction, rows: list[InferenceRequest], attempt: SignedAttempt
    ) -> bool:
        """Replace ``tx``'s bytes (fee bump) if it and the rows it answers are unchanged."""
        ...

    def mark_broadcast(self, tx_hash: str, block: int) -> None: ...
    def mark_resent(self, tx_id: int) -> None: ...
    def mark_mined(self, tx_id: int, block: int) -> None: ...
    def move_mined_block(self, tx_id: int, block: int) -> None: ...
    def settle(
        self, tx_id: int, block: int, succeeded: bool, values: RequestValues
    ) -> list[InferenceRequest]:
        """Record the tx as confirmed or reverted and write ``values(row)`` to each
        submitted row it answers; those rows as read, where written."""
        ...

    def reopen(self, tx_id: int) -> str | None:
        """A reorg took the tx out: back to signed; the answered rows it answers go back to
        submitted. The tx's former status, or None if there is no such tx."""
        ...

    def mark_dropped(self, tx_id: int) -> None:
        """Another tx used the nonce: the submitted rows it answered are ready again."""
        ...

    def record_own_fulfilment(
        self, row: InferenceRequest, tx_id: int | None, block: int, values: dict[str, Any]
    ) -> bool: ...
    def close(self, row: InferenceRequest, status: RequestStatus, error: str | None) -> bool: ...
    def make_error_answer(self, row: InferenceRequest, error: str) -> InferenceRequest | None:
        """The answer becomes an error answer with ``error`` (the output the model gave is
        kept on the row, not sent); the row as it now is, or None if it changed."""
        ...
