"""Row moves shared by the worker stages: every one is a conditional update, so a
redelivered or duplicated task can never write a second result."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.rows import update_request_if
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
    its model record, detached, or None when another task has it or it moved on."""
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
