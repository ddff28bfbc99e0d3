"""The relayer's store on the node's database (:class:`RelayerStore` with SQLAlchemy).

Each write is one database transaction, and every write to a request row is the
compare-and-set of :mod:`oracle.db.rows`: it lands only if the row is still as the relayer
read it (status, block hash, fulfilment pointer).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from oracle.db import Database, InferenceRequest, Transaction
from oracle.db.models import utcnow
from oracle.db.rows import update_request_if
from oracle.errors import TransactionError
from oracle.relayer.attempts import SignedAttempt
from oracle.relayer.store import ANSWERED, READY, RequestValues, ready_status
from oracle.types import RequestStatus, TxStatus


def _same_row(s: Session, seen: InferenceRequest, **values: Any) -> bool:
    return update_request_if(
        s,
        seen.id,
        values,
        statuses=(seen.status,),
        block_hash=seen.block_hash,
        fulfil_tx_id=seen.fulfil_tx_id,
    )


class SqlRelayerStore:
    """:class:`RelayerStore` on the node's database."""

    def __init__(self, db: Database, chain_id: int, coordinator: str, sender: str) -> None:
        self.db = db
        self.chain_id = chain_id
        self.coordinator = coordinator
        self.sender = sender

    def _ours(self) -> tuple[Any, ...]:
        return (Transaction.chain_id == self.chain_id, Transaction.sender == self.sender)

    def _txs(self, *where: Any) -> list[Transaction]:
        with self.db.session() as s:
            return list(s.scalars(select(Transaction).where(*self._ours(), *where)))

    # -- queries ---------------------------------------------------------------------
    def highest_nonce(self) -> int | None:
        with self.db.session() as s:
            return s.scalar(select(func.max(Transaction.nonce)).where(*self._ours()))

    def requests_ready_to_send(self, limit: int, head: int) -> list[InferenceRequest]:
        due = and_(
            InferenceRequest.status == RequestStatus.POSTED.value,
            InferenceRequest.challenger.is_(None),
            InferenceRequest.challenge_deadline < head,
        )
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(InferenceRequest)
                    .where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator,
                        or_(InferenceRequest.status.in_(READY), due),
                    )
                    .order_by(InferenceRequest.id)
                    .limit(limit)
                )
            )

    def posted_requests(self) -> list[InferenceRequest]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(InferenceRequest).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator,
                        InferenceRequest.status == RequestStatus.POSTED.value,
                    )
                )
            )

    def mark_challenged(self, row: InferenceRequest, challenger: str, bond: int) -> bool:
        with self.db.session() as s:
            return _same_row(
                s,
                row,
                status=RequestStatus.CHALLENGED.value,
                challenger=challenger,
                challenger_bond=str(bond),
                proving_at=None,
            )

    def txs_needing_rebroadcast(self) -> list[Transaction]:
        txs = self._txs(Transaction.status == TxStatus.SIGNED.value)
        return sorted(txs, key=lambda tx: tx.nonce)

    def txs_awaiting_receipt(self) -> list[Transaction]:
        return self._txs(Transaction.status.in_((TxStatus.BROADCAST.value, TxStatus.MINED.value)))

    def txs_holding_nonces_from(self, nonce: int) -> dict[int, Transaction]:
        return {tx.nonce: tx for tx in self._txs(Transaction.nonce >= nonce)}

    def confirmed_txs_not_yet_final(self, final_below: int) -> list[Transaction]:
        return self._txs(
            Transaction.status == TxStatus.CONFIRMED.value, Transaction.mined_block > final_below
        )

    def requests_answered_by(self, tx_id: int) -> list[InferenceRequest]:
        with self.db.session() as s:
            return self._answered_by(s, tx_id)

    def own_tx_with_hash(self, tx_hash: str, nonce: int | None) -> Transaction | None:
        where = Transaction.nonce == nonce if nonce is not None else Transaction.tx_hash == tx_hash
        for tx in self._txs(where):
            if tx_hash in (tx.tx_hash, *(tx.replaced_hashes or [])):
                return tx
        return None

    # -- writes ----------------------------------------------------------------------
    def save_fulfilment(self, row: InferenceRequest, attempt: SignedAttempt) -> int:
        with self.db.session() as s:
            tx = self._new_tx(attempt)
            s.add(tx)
            s.flush()
            moving_on = {"post_tx_id": row.fulfil_tx_id} if row.claim_node is not None else {}
            submitted = _same_row(
                s,
                row,
                status=RequestStatus.SUBMITTED.value,
                fulfil_tx_id=tx.id,
                submitted_at=utcnow(),
                **moving_on,
            )
            if not submitted:  # rolls back the transaction row too: nothing was sent
                raise TransactionError(f"request row {row.id} changed while signing")
            return tx.id

    def save_batch(self, rows: list[InferenceRequest], attempt: SignedAttempt) -> int:
        with self.db.session() as s:
            tx = self._new_tx(attempt)
            s.add(tx)
            s.flush()
            now = utcnow()
            for row in rows:
                values = {"status": RequestStatus.SUBMITTED.value, "fulfil_tx_id": tx.id}
                if not _same_row(s, row, submitted_at=now, **values):
                    # rolls back the transaction row and every row before: nothing was sent
                    raise TransactionError(f"request row {row.id} changed while signing")
            return tx.id

    def _new_tx(self, attempt: SignedAttempt) -> Transaction:
        return Transaction(
            chain_id=self.chain_id,
            sender=self.sender,
            nonce=attempt.nonce,
            tx_hash=attempt.tx_hash,
            raw=attempt.raw,
            status=TxStatus.SIGNED.value,
            gas_limit=attempt.gas_limit,
            max_fee_per_gas=str(attempt.fees.max_fee),
            max_priority_fee_per_gas=str(attempt.fees.priority),
            value=str(attempt.value),
        )

    def save_filler(self, attempt: SignedAttempt, stale_id: int | None) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, stale_id) if stale_id is not None else None
            if tx is None:
                s.add(self._new_tx(attempt))
                return
            # The old bytes stay known: if they land after all, that is fine too.
            detached = list(
                s.scalars(select(InferenceRequest.id).where(InferenceRequest.fulfil_tx_id == tx.id))
            )
            s.execute(
                update(InferenceRequest)
                .where(InferenceRequest.fulfil_tx_id == tx.id)
                .values(fulfil_tx_id=None)
                .execution_options(synchronize_session=False)
            )
            tx.replaced_hashes = [*(tx.replaced_hashes or []), tx.tx_hash]
            tx.error = f"nonce gap filled; was for request rows {detached}"
            tx.tx_hash = attempt.tx_hash
            tx.raw = attempt.raw
            tx.status = TxStatus.SIGNED.value
            tx.gas_limit = attempt.gas_limit
            tx.max_fee_per_gas = str(attempt.fees.max_fee)
            tx.max_priority_fee_per_gas = str(attempt.fees.priority)
            tx.value = str(attempt.value)
            tx.mined_block = None

    def save_replacement(
        self, tx: Transaction, rows: list[InferenceRequest], attempt: SignedAttempt
    ) -> bool:
        with self.db.session() as s:
            now = {
                r.id: (r.status, r.block_hash)
                for r in s.execute(
                    select(
                        InferenceRequest.id, InferenceRequest.status, InferenceRequest.block_hash
                    ).where(InferenceRequest.fulfil_tx_id == tx.id)
                )
            }
            if not rows or any(now.get(r.id) != (r.status, r.block_hash) for r in rows):
                return False  # a row it answers moved on: keep the nonce's current bytes
            result = s.execute(
                update(Transaction)
                .where(Transaction.id == tx.id, Transaction.tx_hash == tx.tx_hash)
                .values(
                    replaced_hashes=[*(tx.replaced_hashes or []), tx.tx_hash],
                    tx_hash=attempt.tx_hash,
                    raw=attempt.raw,
                    max_fee_per_gas=str(attempt.fees.max_fee),
                    max_priority_fee_per_gas=str(attempt.fees.priority),
                    status=TxStatus.SIGNED.value,
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def mark_broadcast(self, tx_hash: str, block: int) -> None:
        with self.db.session() as s:
            tx = s.scalars(select(Transaction).where(Transaction.tx_hash == tx_hash)).one()
            if tx.status == TxStatus.SIGNED.value:
                tx.status = TxStatus.BROADCAST.value
                tx.broadcast_at = utcnow()
                tx.broadcast_block = block

    def mark_resent(self, tx_id: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is not None:
                tx.broadcast_at = utcnow()

    def mark_mined(self, tx_id: int, block: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is not None:
                tx.status = TxStatus.MINED.value
                tx.mined_block = block

    def move_mined_block(self, tx_id: int, block: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is not None:
                tx.mined_block = block

    def settle(
        self, tx_id: int, block: int, succeeded: bool, values: RequestValues
    ) -> list[InferenceRequest]:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return []
            tx.mined_block = block
            tx.status = TxStatus.CONFIRMED.value if succeeded else TxStatus.REVERTED.value
            # A row that moved on (reorged away, re-sent) is left as it is.
            rows = [
                r for r in self._answered_by(s, tx_id) if r.status == RequestStatus.SUBMITTED.value
            ]
            return [row for row in rows if _same_row(s, row, **values(row))]

    @staticmethod
    def _answered_by(s: Session, tx_id: int) -> list[InferenceRequest]:
        return list(
            s.scalars(
                select(InferenceRequest)
                .where(InferenceRequest.fulfil_tx_id == tx_id)
                .order_by(InferenceRequest.id)
            )
        )

    def reopen(self, tx_id: int) -> str | None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return None
            was = tx.status
            tx.status = TxStatus.SIGNED.value
            tx.mined_block = None
            for row in self._answered_by(s, tx_id):
                if row.status in ANSWERED:
                    _same_row(s, row, status=RequestStatus.SUBMITTED.value, confirmed_at=None)
            return was

    def mark_dropped(self, tx_id: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return
            tx.status = TxStatus.DROPPED.value
            for row in self._answered_by(s, tx_id):
                if row.status == RequestStatus.SUBMITTED.value:
                    _same_row(s, row, status=ready_status(row))  # re-checked against the chain

    def record_own_fulfilment(
        self, row: InferenceRequest, tx_id: int | None, block: int, values: dict[str, Any]
    ) -> bool:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id) if tx_id is not None else None
            if tx is not None:  # it landed after all: the nonce's record says so again
                tx.status = TxStatus.CONFIRMED.value
                tx.mined_block = block
                values = {**values, "fulfil_tx_id": tx.id}
            return _same_row(s, row, **values)

    def close(self, row: InferenceRequest, status: RequestStatus, error: str | None) -> bool:
        with self.db.session() as s:
            return _same_row(s, row, status=status.value, error=error)

    def make_error_answer(self, row: InferenceRequest, error: str) -> InferenceRequest | None:
        with self.db.session() as s:
            if not _same_row(s, row, error=error):
                return None
        with self.db.session() as s:
            return s.get(InferenceRequest, row.id)
