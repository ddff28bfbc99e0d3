"""Row moves shared by the worker stages: every one is a conditional update, so a
redelivered or duplicated task can never write a second result.

These run on every job, so they are SQLAlchemy Core on a pooled connection, not ORM
sessions, and their statements are built once (the engine caches each one compiled):
when requests arrive together most jobs only read their row's status, and the job that
batches them makes one claim statement and one result write for the whole batch. The
compare-and-set is the one of :mod:`oracle.db.rows` (the row's id and its status in the
UPDATE's WHERE, decided row by row by the database)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
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

REQUESTS = cast(Table, InferenceRequest.__table__)
MODELS = cast(Table, ModelRecord.__table__)
_c = REQUESTS.c

_STATUS = select(_c.status).where(_c.id == bindparam("row_id"))
_RECORD = select(MODELS).where(MODELS.c.model_id == bindparam("b_model_id"))
# The rows of a batch: a few columns of each, as the claim returns them.
_BATCH_COLUMNS = (_c.id, _c.input, _c.mode)
_BATCH_CANDIDATES = (
    select(_c.id)
    .where(
        _c.model_id == bindparam("b_model_id"),
        _c.chain_id == bindparam("b_chain_id"),
        _c.coordinator == bindparam("b_coordinator"),
        _c.status == bindparam("b_status"),
        _c.attempts == 0,
        _c.id != bindparam("b_leader"),
    )
    .order_by(_c.id)
    .limit(bindparam("b_limit"))
)
_CLAIM_BATCH = (
    update(REQUESTS)
    .where(
        _c.id.in_(_BATCH_CANDIDATES),
        _c.status == bindparam("b_status"),  # re-checked on the row the UPDATE writes
        _c.attempts == 0,
    )
    .values(attempts=1)
    .returning(*_BATCH_COLUMNS)
)
_HOLD = (
    update(REQUESTS)
    .where(
        _c.id.in_(bindparam("b_ids", expanding=True)),
        _c.status.in_(bindparam("b_statuses", expanding=True)),
    )
    .values(updated_at=bindparam("b_now"))
    .returning(_c.id)
)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """What running a batched row needs of it."""

    id: int
    input: list[Any]
    mode: int


def status_of(db: Database, row_id: int) -> str | None:
    """The row's status (None: no such row): a plain read, no write lock. Most jobs do
    only this when requests arrive together (a batch ran their rows)."""
    with db.engine.connect() as conn:
        status = conn.execute(_STATUS, {"row_id": row_id}).scalar()
    return None if status is None else str(status)


@lru_cache(maxsize=16)
def _claim(statuses: tuple[str, ...], increment: str, columns: tuple[str, ...]) -> Update:
    """``UPDATE requests SET <increment> = <increment> + 1, <columns> WHERE id = :row AND
    status IN <statuses> RETURNING *``, with one parameter per column (``v_<column>``)."""
    return (
        update(REQUESTS)
        .where(_c.id == bindparam("v_row"), _c.status.in_(statuses))
        .values({increment: _c[increment] + 1, **{n: bindparam(f"v_{n}") for n in columns}})
        .returning(REQUESTS)
    )


def claim(
    db: Database, row_id: int, statuses: Collection[str], increment: str, **values: Any
) -> tuple[InferenceRequest, ModelRecord | None] | None:
    """Take the row if it is in one of ``statuses``, adding one to its ``increment`` column
    (its attempt count) and writing ``values``; return it and its model record, detached,
    or None when another task has it or it moved on.

    A plain read comes first: a job whose row a batch already ran (most jobs, when
    requests arrive together) leaves without taking the database's write lock. The
    conditional update still decides, and returns the row as it wrote it."""
    if status_of(db, row_id) not in statuses:
        return None
    statement = _claim(tuple(statuses), increment, tuple(values))
    with db.engine.begin() as conn:
        row = conn.execute(statement, {"v_row": row_id, **_named(values)}).first()
        if row is None:
            return None
        record = conn.execute(_RECORD, {"b_model_id": row.model_id}).first()
    return (
        InferenceRequest(**row._mapping),
        ModelRecord(**record._mapping) if record is not None else None,
    )


def leave_unserved(db: Database, row_id: int, statuses: Collection[str], reason: str) -> bool:
    """This node does not hold the model (or its circuit): mark the row ``unserved`` with
    ``reason`` and send nothing, leaving the request to a node that holds it. Never an
    error answer: that would let a node without the model answer for one that has it."""
    return finish(db, row_id, statuses, status=RequestStatus.UNSERVED.value, error=reason)


def finish(db: Database, row_id: int, statuses: Collection[str], **values: Any) -> bool:
    """Write ``values`` to the row only if it is in one of ``statuses``; True if it was."""
    params = {"v_row": row_id, "v_updated_at": utcnow(), **_named(values)}
    with db.engine.begin() as conn:
        written = conn.execute(_write((*values, "updated_at"), tuple(statuses)), params)
        return int(written.rowcount) == 1


def claim_batch(db: Database, leader: InferenceRequest, status: str, limit: int) -> list[BatchRow]:
    """Take up to ``limit`` more rows to run with ``leader``: same model, chain and
    Coordinator, in ``status`` and never claimed (``attempts == 0``). One statement: the
    claim moves each from 0 to 1 attempts on that condition, so a row lands in at most one
    batch, and a row that was ever claimed (maybe by a batch that then crashed its worker)
    waits for its own job, which runs it alone (see ``workers.inference``). Returns the
    rows in id order."""
    if limit <= 0:
        return []
    params = {
        "b_model_id": leader.model_id,
        "b_chain_id": leader.chain_id,
        "b_coordinator": leader.coordinator,
        "b_status": status,
        "b_leader": leader.id,
        "b_limit": limit,
    }
    with db.engine.begin() as conn:
        claimed = [BatchRow(r.id, r.input, r.mode) for r in conn.execute(_CLAIM_BATCH, params)]
    return sorted(claimed, key=lambda r: r.id)


@lru_cache(maxsize=64)
def _write(columns: tuple[str, ...], statuses: tuple[str, ...]) -> Update:
    """``UPDATE requests SET <columns> WHERE id = :row AND status IN <statuses>``, with one
    parameter per column (``v_<column>``): run once per row of a batch (executemany)."""
    return (
        update(REQUESTS)
        # OR of equalities, not IN: an IN list is expanded per execution (no executemany)
        .where(_c.id == bindparam("v_row"), or_(*(_c.status == status for status in statuses)))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


def _named(values: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


def finish_many(
    db: Database, results: Sequence[tuple[int, dict[str, Any]]], statuses: Collection[str]
) -> list[bool]:
    """:func:`finish` for each ``(row_id, values)``, in one transaction; True for each row
    that was written. Every ``values`` must name the same columns.

    One executemany writes each row its own values under its own condition (its status
    in ``statuses``). When every row was still there (the usual case, told by the summed
    row count) that is all; otherwise it is rolled back and redone in two statements, so
    each row's fate is known: one conditional update decides, row by row, which rows are
    still in ``statuses`` (and holds them until the commit), then the executemany writes
    those."""
    if not results:
        return []
    now = utcnow()
    keys = tuple(statuses)
    statement = _write((*results[0][1], "updated_at"), keys)
    params = {
        row_id: {"v_row": row_id, "v_updated_at": now, **_named(values)}
        for row_id, values in results
    }
    with db.engine.connect() as conn:
        with conn.begin() as transaction:
            if int(conn.execute(statement, list(params.values())).rowcount) == len(params):
                return [True] * len(results)
            transaction.rollback()
        with conn.begin():
            hold = {"b_ids": list(params), "b_statuses": list(keys), "b_now": now}
            won = set(conn.execute(_HOLD, hold).scalars())
            if won:
                conn.execute(statement, [p for row_id, p in params.items() if row_id in won])
    return [row_id in won for row_id, _ in results]
