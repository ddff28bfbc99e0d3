"""An in-memory :class:`~oracle.relayer.store.RelayerStore`: the relayer parts' unit tests
run against it, with a real anvil as the chain.

It keeps the compare-and-set rule of the SQL store (a request row is written only if its
status, block hash and fulfilment pointer are still as read) and hands out copies, as the
SQL store hands out detached rows.
"""

from __future__ import annotations

from typing import Any, TypeVar

from oracle.db import InferenceRequest, Transaction
from oracle.db.models import utcnow
from oracle.errors import TransactionError
from oracle.relayer.attempts import SignedAttempt
from oracle.relayer.store import ANSWERED, READY, RequestValues, ready_status
from oracle.types import RequestStatus, TxStatus

T = TypeVar("T", InferenceRequest, Transaction)


def copy(obj: T) -> T:
    return type(obj)(**{c.key: getattr(obj, c.key) for c in obj.__table__.columns})


class FakeStore:
    def __init__(self) -> None:
        self.requests: dict[int, InferenceRequest] = {}
        self.txs: dict[int, Transaction] = {}
        self.saved: list[str] = []  # tx hashes in the order they were saved

    # -- test helpers ----------------------------------------------------------------
    def add_request(self, row: InferenceRequest) -> InferenceRequest:
        row.id = len(self.requests) + 1
        self.requests[row.id] = row
        return copy(row)  # what a reader got: later writes to the store do not show in it

    def tx_by_hash(self, tx_hash: str) -> Transaction:
        return next(tx for tx in self.txs.values() if tx.tx_hash == tx_hash)

    def _same_row(self, seen: InferenceRequest, **values: Any) -> bool:
        row = self.requests.get(seen.id)
        if row is None or (row.status, row.block_hash, row.fulfil_tx_id) != (
            seen.status,
            seen.block_hash,
            seen.fulfil_tx_id,
        ):
            return False
        for key, value in values.items():
            setattr(row, key, value)
        return True

    def _answered_by(self, tx_id: int) -> list[InferenceRequest]:
        return sorted(
            (r for r in self.requests.values() if r.fulfil_tx_id == tx_id), key=lambda r: r.id
        )

    # -- queries ---------------------------------------------------------------------
    def highest_nonce(self) -> int | None:
        return max((tx.nonce for tx in self.txs.values()), default=None)

    def requests_ready_to_send(self, limit: int, head: int) -> list[InferenceRequest]:
        def due(r: InferenceRequest) -> bool:
            return (
                r.status == RequestStatus.POSTED.value
                and r.challenger is None
                and r.challenge_deadline is not None
                and r.challenge_deadline < head
            )

        rows = [copy(r) for r in self.requests.values() if r.status in READY or due(r)]
        return sorted(rows, key=lambda r: r.id)[:limit]

    def posted_requests(self) -> list[InferenceRequest]:
        return [copy(r) for r in self.requests.values() if r.status == RequestStatus.POSTED.value]

    def mark_challenged(self, row: InferenceRequest, challenger: str, bond: int) -> bool:
        return self._same_row(
            row,
            status=RequestStatus.CHALLENGED.value,
            challenger=challenger,
            challenger_bond=str(bond),
            proving_at=None,
        )

    def txs_needing_rebroadcast(self) -> list[Transaction]:
        txs = [copy(t) for t in self.txs.values() if t.status == TxStatus.SIGNED.value]
        return sorted(txs, key=lambda t: t.nonce)

    def txs_awaiting_receipt(self) -> list[Transaction]:
        waiting = (TxStatus.BROADCAST.value, TxStatus.MINED.value)
        return [copy(t) for t in self.txs.values() if t.status in waiting]

    def txs_holding_nonces_from(self, nonce: int) -> dict[int, Transaction]:
        return {t.nonce: copy(t) for t in self.txs.values() if t.nonce >= nonce}

    def confirmed_txs_not_yet_final(self, final_below: int) -> list[Transaction]:
        return [
            copy(t)
            for t in self.txs.values()
            if t.status == TxStatus.CONFIRMED.value and (t.mined_block or -1) > final_below
        ]

    def requests_answered_by(self, tx_id: int) -> list[InferenceRequest]:
        return [copy(row) for row in self._answered_by(tx_id)]

    def own_tx_with_hash(self, tx_hash: str, nonce: int | None) -> Transaction | None:
        for tx in self.txs.values():
            if tx_hash in (tx.tx_hash, *(tx.replaced_hashes or [])):
                return copy(tx)
        return None

    # -- writes ----------------------------------------------------------------------
    def _new_tx(self, attempt: SignedAttempt) -> Transaction:
        tx = Transaction(
            id=len(self.txs) + 1,
            nonce=attempt.nonce,
            tx_hash=attempt.tx_hash,
            raw=attempt.raw,
            status=TxStatus.SIGNED.value,
            gas_limit=attempt.gas_limit,
            max_fee_per_gas=str(attempt.fees.max_fee),
            max_priority_fee_per_gas=str(attempt.fees.priority),
            value=str(attempt.value),
            created_at=utcnow(),
        )
        self.saved.append(attempt.tx_hash)
        return tx

    def save_fulfilment(self, row: InferenceRequest, attempt: SignedAttempt) -> int:
        tx = self._new_tx(attempt)
        moving_on = {"post_tx_id": row.fulfil_tx_id} if row.claim_node is not None else {}
        if not self._same_row(
            row,
            status=RequestStatus.SUBMITTED.value,
            fulfil_tx_id=tx.id,
            submitted_at=utcnow(),
            **moving_on,
        ):
            raise TransactionError(f"request row {row.id} changed while signing")
        self.txs[tx.id] = tx
        return tx.id

    def save_batch(self, rows: list[InferenceRequest], attempt: SignedAttempt) -> int:
        tx = self._new_tx(attempt)
        current = [self.requests.get(row.id) for row in rows]
        if any(
            now is None
            or (now.status, now.block_hash, now.fulfil_tx_id)
            != (row.status, row.block_hash, row.fulfil_tx_id)
            for now, row in zip(current, rows, strict=True)
        ):
            self.saved.pop()
            raise TransactionError("a request row changed while signing")
        for row in rows:
            self._same_row(
                row, status=RequestStatus.SUBMITTED.value, fulfil_tx_id=tx.id, submitted_at=utcnow()
            )
        self.txs[tx.id] = tx
        return tx.id

    def save_filler(self, attempt: SignedAttempt, stale_id: int | None) -> None:
        stale = self.txs.get(stale_id) if stale_id is not None else None
        if stale is None:
            tx = self._new_tx(attempt)
            self.txs[tx.id] = tx
            return
        for row in self.requests.values():
            if row.fulfil_tx_id == stale.id:
                row.fulfil_tx_id = None
        stale.replaced_hashes = [*(stale.replaced_hashes or []), stale.tx_hash]
        stale.tx_hash, stale.raw = attempt.tx_hash, attempt.raw
        stale.status, stale.gas_limit, stale.mined_block = TxStatus.SIGNED.value, 21_000, None
        stale.max_fee_per_gas = str(attempt.fees.max_fee)
        stale.max_priority_fee_per_gas = str(attempt.fees.priority)
        self.saved.append(attempt.tx_hash)

    def save_replacement(
        self, tx: Transaction, rows: list[InferenceRequest], attempt: SignedAttempt
    ) -> bool:
        stored = self.txs.get(tx.id)
        if stored is None or stored.tx_hash != tx.tx_hash or not rows:
            return False
        for row in rows:
            current = self.requests.get(row.id)
            if current is None or (current.fulfil_tx_id, current.status, current.block_hash) != (
                tx.id,
                row.status,
                row.block_hash,
            ):
                return False
        stored.replaced_hashes = [*(stored.replaced_hashes or []), stored.tx_hash]
        stored.tx_hash, stored.raw = attempt.tx_hash, attempt.raw
        stored.max_fee_per_gas = str(attempt.fees.max_fee)
        stored.max_priority_fee_per_gas = str(attempt.fees.priority)
        stored.status = TxStatus.SIGNED.value
        self.saved.append(attempt.tx_hash)
        return True

    def mark_broadcast(self, tx_hash: str, block: int) -> None:
        tx = self.tx_by_hash(tx_hash)
        if tx.status == TxStatus.SIGNED.value:
            tx.status, tx.broadcast_at, tx.broadcast_block = (
                TxStatus.BROADCAST.value,
                utcnow(),
                block,
            )

    def mark_resent(self, tx_id: int) -> None:
        self.txs[tx_id].broadcast_at = utcnow()

    def mark_mined(self, tx_id: int, block: int) -> None:
        self.txs[tx_id].status, self.txs[tx_id].mined_block = TxStatus.MINED.value, block

    def move_mined_block(self, tx_id: int, block: int) -> None:
        self.txs[tx_id].mined_block = block

    def settle(
        self, tx_id: int, block: int, succeeded: bool, values: RequestValues
    ) -> list[InferenceRequest]:
        tx = self.txs[tx_id]
        tx.mined_block = block
        tx.status = TxStatus.CONFIRMED.value if succeeded else TxStatus.REVERTED.value
        seen = [
            copy(r) for r in self._answered_by(tx_id) if r.status == RequestStatus.SUBMITTED.value
        ]
        return [row for row in seen if self._same_row(row, **values(row))]

    def reopen(self, tx_id: int) -> str | None:
        tx = self.txs[tx_id]
        was, tx.status, tx.mined_block = tx.status, TxStatus.SIGNED.value, None
        for row in self._answered_by(tx_id):
            if row.status in ANSWERED:
                self._same_row(copy(row), status=RequestStatus.SUBMITTED.value, confirmed_at=None)
        return was

    def mark_dropped(self, tx_id: int) -> None:
        self.txs[tx_id].status = TxStatus.DROPPED.value
        for row in self._answered_by(tx_id):
            if row.status == RequestStatus.SUBMITTED.value:
                self._same_row(copy(row), status=ready_status(row))

    def record_own_fulfilment(
        self, row: InferenceRequest, tx_id: int | None, block: int, values: dict[str, Any]
    ) -> bool:
        if tx_id is not None:
            tx = self.txs[tx_id]
            tx.status, tx.mined_block = TxStatus.CONFIRMED.value, block
            values = {**values, "fulfil_tx_id": tx_id}
        return self._same_row(row, **values)

    def close(self, row: InferenceRequest, status: RequestStatus, error: str | None) -> bool:
        return self._same_row(row, status=status.value, error=error)

    def make_error_answer(self, row: InferenceRequest, error: str) -> InferenceRequest | None:
        if not self._same_row(row, error=error):
            return None
        return copy(self.requests[row.id])
