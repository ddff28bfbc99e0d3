"""What the listener keeps in the database, behind one small boundary.

:class:`ListenerStore` names the listener's queries by what they do; :class:`SqlListenerStore`
is the SQLAlchemy implementation. Every method is one database transaction, bound to one
chain and one Coordinator.

A request assigned to another node is kept as a ``standby`` row and not handed to the
workers: the re-dispatcher takes it over once its exclusive window has passed, if it is
still pending (:mod:`oracle.ingest.redispatch`).

A ``RequestReopened`` log (an optimistic answer was slashed; the request is open again in Zk
mode from that block) resets the request's row whatever its state, like a request that came
back after a reorg: same id, new commitment, new assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from oracle.chain.client import RequestedEvent
from oracle.db import BlockRecord, ChainCursor, Database, InferenceRequest
from oracle.db.models import utcnow
from oracle.errors import ChainError
from oracle.types import RequestStatus


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str


@dataclass(frozen=True)
class Cursor:
    """The last block the listener read, and why it stopped reading if it did."""

    block_number: int
    block_hash: str
    halted_reason: str | None = None


class ListenerStore(Protocol):
    def cursor(self) -> Cursor | None:
        """The cursor, or None before the first poll."""

    def create_cursor(self, block_number: int, block_hash: str) -> Cursor:
        """Place the cursor where reading starts (the block before the first one read)."""

    def commit_range(
        self, events: Sequence[RequestedEvent], last: Header, forget_below: int
    ) -> list[int]:
        """Atomically: insert a row per new request and reopen ``reorged`` rows whose
        request came back, remember ``last``, forget blocks below ``forget_below``, and
        move the cursor to ``last``. Returns the ids of the rows to hand to the workers
        (not those assigned to another node: they wait as ``standby``)."""

    def remembered_blocks(self, above: int, up_to: int) -> dict[int, str]:
        """Hashes of remembered blocks with ``above < number <= up_to``."""

    def rewind(self, fork: int, fork_hash: str) -> int:
        """Atomically: mark rows from blocks above ``fork`` reorged, forget those blocks,
        move the cursor back to ``fork``. Returns how many rows were marked."""

    def halt(self, reason: str) -> None:
        """Record that the listener refuses to go on (read by health and ``oracle status``)."""


def first_status(ev: RequestedEvent, node: str | None) -> RequestStatus:
    """``seen`` for a request this node should work now, ``standby`` for one assigned to
    another node (``node`` None: every request is this node's)."""
    if node is None or ev.assignee is None or ev.assignee.lower() == node.lower():
        return RequestStatus.SEEN
    return RequestStatus.STANDBY


def reopen(row: InferenceRequest, ev: RequestedEvent, status: RequestStatus) -> None:
    """A ``reorged`` request came back in another block, or a slashed one was re-opened:
    same id, new commitment, and perhaps another assignment."""
    apply_event(row, ev)
    row.status = status.value
    row.output = None
    row.error = None
    row.attempts = 0
    row.reference_output = None
    row.proof = None
    row.proof_attempts = 0
    row.circuit_deviation = None
    row.fulfil_tx_id = None
    row.fulfil_reverts = 0  # reverts of the old commitment say nothing about the new one
    row.callback_succeeded = None
    row.claim_node = None
    row.post_tx_id = None
    row.claim_bond = None
    row.challenge_deadline = None
    row.proof_deadline = None
    row.challenger = None
    row.challenger_bond = None
    row.seen_at = utcnow()


def apply_event(row: InferenceRequest, ev: RequestedEvent) -> None:
    row.model_id = ev.model_id
    row.consumer = ev.consumer
    row.input = [str(v) for v in ev.input]
    row.mode = int(ev.mode)
    row.callback_gas_limit = ev.callback_gas_limit
    row.fee = str(ev.fee)
    row.block_number = ev.block_number
    row.block_hash = ev.block_hash
    row.tx_hash = ev.tx_hash
    row.log_index = ev.log_index
    row.assignee = ev.assignee
    row.exclusive_until_block = ev.exclusive_until_block


class SqlListenerStore:
    """:class:`ListenerStore` on the node's database, for the node whose signer is ``node``
    (None: every request is this node's)."""

    def __init__(
        self, db: Database, chain_id: int, coordinator: str, node: str | None = None
    ) -> None:
        self.db = db
        self.chain_id = chain_id
        self.coordinator = coordinator
        self.node = node

    def cursor(self) -> Cursor | None:
        with self.db.session() as s:
            cur = s.get(ChainCursor, (self.chain_id, self.coordinator))
            if cur is None:
                return None
            return Cursor(cur.block_number, cur.block_hash, cur.halted_reason)

    def create_cursor(self, block_number: int, block_hash: str) -> Cursor:
        with self.db.session() as s:
            existing = s.get(ChainCursor, (self.chain_id, self.coordinator))
            if existing is not None:
                return Cursor(existing.block_number, existing.block_hash, existing.halted_reason)
            s.add(
                ChainCursor(
                    chain_id=self.chain_id,
                    coordinator=self.coordinator,
                    block_number=block_number,
                    block_hash=block_hash,
                )
            )
        return Cursor(block_number, block_hash)

    def commit_range(
        self, events: Sequence[RequestedEvent], last: Header, forget_below: int
    ) -> list[int]:
        with self.db.session() as s:
            new_rows = self._insert_or_reopen(s, events)
            s.merge(
                BlockRecord(
                    chain_id=self.chain_id,
                    coordinator=self.coordinator,
                    number=last.number,
                    hash=last.hash,
                    parent_hash=last.parent_hash,
                )
            )
            s.execute(delete(BlockRecord).where(*self._blocks(), BlockRecord.number < forget_below))
            cur = s.get(ChainCursor, (self.chain_id, self.coordinator))
            if cur is None:
                raise ChainError("listener cursor vanished during a poll")
            cur.block_number = last.number
            cur.block_hash = last.hash
            cur.updated_at = utcnow()
        return new_rows

    def remembered_blocks(self, above: int, up_to: int) -> dict[int, str]:
        with self.db.session() as s:
            return {
                r.number: r.hash
                for r in s.scalars(
                    select(BlockRecord).where(
                        *self._blocks(), BlockRecord.number <= up_to, BlockRecord.number > above
                    )
                )
            }

    def rewind(self, fork: int, fork_hash: str) -> int:
        with self.db.session() as s:
            marked = s.execute(
                update(InferenceRequest)
                .where(
                    InferenceRequest.chain_id == self.chain_id,
                    InferenceRequest.coordinator == self.coordinator,
                    InferenceRequest.block_number > fork,
                    InferenceRequest.status != RequestStatus.REORGED.value,
                )
                .values(status=RequestStatus.REORGED.value)
            ).rowcount  # type: ignore[attr-defined]
            s.execute(delete(BlockRecord).where(*self._blocks(), BlockRecord.number > fork))
            cur = s.get(ChainCursor, (self.chain_id, self.coordinator))
            if cur is not None:
                cur.block_number = fork
                cur.block_hash = fork_hash
                cur.updated_at = utcnow()
        return int(marked)

    def halt(self, reason: str) -> None:
        with self.db.session() as s:
            cur = s.get(ChainCursor, (self.chain_id, self.coordinator))
            if cur is not None:
                cur.halted_reason = reason

    # -- helpers ---------------------------------------------------------------------
    def _blocks(self) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return (BlockRecord.chain_id == self.chain_id, BlockRecord.coordinator == self.coordinator)

    def _insert_or_reopen(self, s: Session, events: Sequence[RequestedEvent]) -> list[int]:
        """Insert or reopen each event's row, in log order (one read of the rows that exist,
        one flush); the ids of the rows to hand over now."""
        if not events:
            return []
        known = {
            row.request_id: row
            for row in s.scalars(
                select(InferenceRequest).where(
                    InferenceRequest.chain_id == self.chain_id,
                    InferenceRequest.coordinator == self.coordinator,
                    InferenceRequest.request_id.in_({int(ev.request_id) for ev in events}),
                )
            )
        }
        handed: dict[int, InferenceRequest] = {}  # by request id, in log order
        for ev in events:
            status = first_status(ev, self.node)
            row = known.get(ev.request_id)
            if row is not None:
                already = row.block_number == ev.block_number and row.mode == ev.mode
                reopened = ev.reopened and not already
                if row.status != RequestStatus.REORGED.value and not reopened:
                    continue
                reopen(row, ev, status)
            else:
                row = InferenceRequest(
                    chain_id=self.chain_id,
                    coordinator=self.coordinator,
                    request_id=ev.request_id,
                    status=status.value,
                    attempts=0,
                )
                apply_event(row, ev)
                s.add(row)
                known[ev.request_id] = row
            if status is RequestStatus.SEEN:
                handed[ev.request_id] = row
            else:
                handed.pop(ev.request_id, None)
        s.flush()
        return [row.id for row in handed.values()]
