"""Row moves shared by the worker stages: every one is a conditional update, so a
redelivered or duplicated task can never write a second result."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
from oracle.db.rows import update_request_if, update_requests_if
from oracle.types import RequestStatus

# Celery options of a task that takes one row id: acked after it ran (a killed worker's
# job is redone), retried while the database is briefly unreachable.
ROW_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": 8,
}


def claim(
    db: Database, row_id: int, statuses: Collection[str], **counters: Any
) -> tuple[InferenceRequest, ModelRecord | None] | None:
    """Take the row if it is in one of ``statuses`` (writing ``counters``); return it and
    its model record, detached, or None when another task has it or it moved on.

    A plain read comes first: a job whose row a batch already ran (most jobs, when
    requests arrive together) leaves without taking the database's write lock. The
    conditional update still decides."""
    with db.session() as s:
        status = s.scalar(select(InferenceRequest.status).where(InferenceRequest.id == row_id))
    if status not in statuses:
        return None
    with db.session() as s:
        if not update_request_if(s, row_id, counters, statuses=statuses):
            return None
        row = s.get(InferenceRequest, row_id)
        if row is None:
            return None
        record = s.scalars(select(ModelRecord).where(ModelRecord.model_id == row.model_id)).first()
        s.expunge_all()
        return row, record


def leave_unserved(db: Database, row_id: int, statuses: Collection[str], reason: str) -> bool:
    """This node does not hold the model (or its circuit): mark the row ``unserved`` with
    ``reason`` and send nothing, leaving the request to a node that holds it. Never an
    error answer: that would let a node without the model answer for one that has it."""
    return finish(db, row_id, statuses, status=RequestStatus.UNSERVED.value, error=reason)


def finish(db: Database, row_id: int, statuses: Collection[str], **values: Any) -> bool:
    """Write ``values`` to the row only if it is in one of ``statuses``; True if it was."""
    with db.session() as s:
        return update_request_if(s, row_id, values, statuses=statuses)


def claim_batch(
    db: Database, leader: InferenceRequest, status: str, limit: int
) -> list[InferenceRequest]:
    """Take up to ``limit`` more rows to run with ``leader``: same model, chain and
    Coordinator, in ``status`` and never claimed (``attempts == 0``). The claim moves each
    from 0 to 1 attempts on that condition, so a row lands in at most one batch, and a row
    that was ever claimed (maybe by a batch that then crashed its worker) waits for its own
    job, which runs it alone (see ``workers.inference``). Returns the rows, detached."""
    if limit <= 0:
        return []
    with db.session() as s:
        candidates = s.scalars(
            select(InferenceRequest.id)
            .where(
                InferenceRequest.model_id == leader.model_id,
                InferenceRequest.chain_id == leader.chain_id,
                InferenceRequest.coordinator == leader.coordinator,
                InferenceRequest.status == status,
                InferenceRequest.attempts == 0,
                InferenceRequest.id != leader.id,
            )
            .order_by(InferenceRequest.id)
            .limit(limit)
        ).all()
        won = update_requests_if(s, candidates, {"attempts": 1}, statuses=(status,), attempts=0)
        if not won:
            return []
        claimed = list(
            s.scalars(
                select(InferenceRequest)
                .where(InferenceRequest.id.in_(won))
                .order_by(InferenceRequest.id)
            )
        )
        s.expunge_all()
        return claimed


def finish_many(
    db: Database, results: Sequence[tuple[int, dict[str, Any]]], statuses: Collection[str]
) -> list[bool]:
    """:func:`finish` for each ``(row_id, values)``, in one transaction: a conditional update
    decides, row by row, which rows are still in ``statuses`` (and holds them), then each of
    those gets its own values. True for each row that was written. Every ``values`` must
    name the same columns."""
    if not results:
        return []
    ids = [row_id for row_id, _ in results]
    with db.session() as s:
        won = set(update_requests_if(s, ids, {"updated_at": utcnow()}, statuses=statuses))
        if won:
            s.execute(
                update(InferenceRequest),
                [{"id": row_id, **values} for row_id, values in results if row_id in won],
            )
        return [row_id in won for row_id in ids]
