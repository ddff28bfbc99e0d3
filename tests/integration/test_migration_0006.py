"""Migration 0006 on existing rows, up and down, on SQLite and PostgreSQL: the assignment
columns come and go, and the downgrade maps the new statuses onto ones 0004 knows."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from oracle.db import Database
from oracle.db.session import alembic_config

_REQUEST = (
    "INSERT INTO requests (chain_id, coordinator, request_id, model_id, consumer, input, mode,"
    " callback_gas_limit, fee, block_number, block_hash, tx_hash, log_index, status, attempts,"
    " fulfil_reverts, proof_attempts, seen_at, updated_at, assignee, exclusive_until_block)"
    " VALUES (1, 'c', :rid, 'm', 'c', '[]', 0, 1, '1', 1, 'h', 't', 0, :status, 0, 0, 0,"
    " '2026-01-01', '2026-01-01', '0xabc', 9)"
)


def columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("requests")}


def test_0006_adds_the_assignment_and_downgrades_the_new_statuses(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade("0006")
        assert {"assignee", "exclusive_until_block"} <= columns(db)
        with db.engine.begin() as c:
            for rid, status in ((1, "standby"), (2, "unserved"), (3, "confirmed")):
                c.execute(text(_REQUEST), {"rid": rid, "status": status})
        command.downgrade(alembic_config(db_url), "0005")
        db.engine.dispose()
        assert not {"assignee", "exclusive_until_block"} & columns(db)
        with db.engine.begin() as c:
            rows = sorted(c.execute(text("SELECT request_id, status FROM requests")).all())
        assert [tuple(r) for r in rows] == [(1, "seen"), (2, "abandoned"), (3, "confirmed")]
        db.upgrade("0006")
        assert {"assignee", "exclusive_until_block"} <= columns(db)
    finally:
        db.dispose()
