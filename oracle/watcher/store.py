"""The watcher's rows (``watches``): one per optimistic answer it saw, and what it did.

The store's queries say what they find; every write is its own committed transaction, so a
row always shows the last step that happened (a transaction hash is saved before the
transaction is sent)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from oracle.chain.optimistic import PostedAnswer
from oracle.db import Database, Watch
from oracle.types import WatchStatus, WatchVerdict

# Rows whose challenger bond is at risk (counted against the budget).
AT_RISK = (WatchStatus.CHALLENGING.value, WatchStatus.CHALLENGED.value)


@dataclass(frozen=True)
class Verdict:
    """What the watcher decided about one answer before acting on it."""

    verdict: WatchVerdict
    status: WatchStatus
    circuit_output: list[int] | None = None
    detail: str | None = None
    challenger_bond: int | None = None  # reserved against the budget for a challenge


class WatchStore:
    """``watches`` rows of one chain and Coordinator."""

    def __init__(self, db: Database, chain_id: int, coordinator: str) -> None:
        self.db = db
        self.chain_id = chain_id
        self.coordinator = coordinator

    def _mine(self) -> Any:
        return (Watch.chain_id == self.chain_id) & (Watch.coordinator == self.coordinator)

    def highest_posted_block(self) -> int | None:
        """The posting block of the latest answer recorded: where a restart resumes."""
        with self.db.session() as s:
            value = s.scalar(select(func.max(Watch.posted_block)).where(self._mine()))
        return None if value is None else int(value)

    def exists(self, posted: PostedAnswer) -> bool:
        with self.db.session() as s:
            found = s.scalar(
                select(Watch.id).where(
                    self._mine(),
                    Watch.request_id == posted.request_id,
                    Watch.posted_block == posted.block_number,
                )
            )
        return found is not None

    def record(self, posted: PostedAnswer, model_id: str, verdict: Verdict) -> int | None:
        """Insert the row of ``posted``; None if it was already there (a rescan)."""
        row = Watch(
            chain_id=self.chain_id,
            coordinator=self.coordinator,
            request_id=posted.request_id,
            posted_block=posted.block_number,
            model_id=model_id,
            node=posted.node,
            posted_output=list(posted.output),
            circuit_output=verdict.circuit_output,
            bond=str(posted.bond),
            challenge_deadline=posted.challenge_deadline,
            proof_deadline=posted.proof_deadline,
            verdict=verdict.verdict.value,
            status=verdict.status.value,
            detail=verdict.detail,
            challenger_bond=None
            if verdict.challenger_bond is None
            else str(verdict.challenger_bond),
        )
        try:
            with self.db.session() as s:
                s.add(row)
                s.flush()
                return int(row.id)
        except IntegrityError:
            return None

    def bonds_at_risk(self) -> int:
        """Sum of the challenger bonds of our open challenges (sent or on chain)."""
        with self.db.session() as s:
            bonds = s.scalars(
                select(Watch.challenger_bond).where(self._mine(), Watch.status.in_(AT_RISK))
            ).all()
        return sum(int(b) for b in bonds if b is not None)

    def with_status(self, *statuses: WatchStatus) -> Sequence[Watch]:
        with self.db.session() as s:
            return s.scalars(
                select(Watch)
                .where(self._mine(), Watch.status.in_([st.value for st in statuses]))
                .order_by(Watch.id)
            ).all()

    def get(self, row_id: int) -> Watch:
        with self.db.session() as s:
            row = s.get(Watch, row_id)
            if row is None:
                raise KeyError(row_id)
            return row

    def update(self, row_id: int, **values: Any) -> None:
        with self.db.session() as s:
            row = s.get(Watch, row_id)
            if row is None:
                raise KeyError(row_id)
            for key, value in values.items():
                setattr(row, key, value.value if isinstance(value, WatchStatus) else value)
