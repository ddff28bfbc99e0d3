"""Migration 0007 on existing rows, up and down, on SQLite and PostgreSQL: the optimistic
columns and the watcher's table come and go, transactions get a value of 0, and the downgrade
maps the new statuses onto ones 0006 knows."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from oracle.db import Database
from oracle.db.session import alembic_config

_REQUEST = (
    "INSERT INTO requests (chain_id, coordinator, request_id, model_id, consumer, input, mode,"
    " callback_gas_limit, fee, block_number, block_hash, tx_hash, log_index, status, attempts,"
    " fulfil_reverts, proof_attempts, seen_at, updated_at)"
    " VALUES (1, 'c', :rid, 'm', 'c', '[]', 2, 1, '1', 1, 'h', 't', 0, :status, 0, 0, 0,"
    " '2026-01-01', '2026-01-01')"
)
_TX = (
    "INSERT INTO transactions (chain_id, sender, nonce, tx_hash, raw, status, gas_limit,"
    " max_fee_per_gas, max_priority_fee_per_gas, created_at)"
    " VALUES (1, 's', 0, 'h0', :raw, 'confirmed', 21000, '1', '1', '2026-01-01')"
)
OPTIMISTIC = {"claim_node", "claim_bond", "challenge_deadline", "proof_deadline", "challenger"}


def columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def test_0007_adds_optimistic_state_and_downgrades_the_new_statuses(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade("0006")
        with db.engine.begin() as c:
            c.execute(text(_TX), {"raw": b"\x01"})
        db.upgrade("0007")
        assert columns(db, "requests") >= OPTIMISTIC
        assert "watches" in inspect(db.engine).get_table_names()
        with db.engine.begin() as c:
            assert c.execute(text("SELECT value FROM transactions")).scalar_one() == "0"
            for rid, status in ((1, "posted"), (2, "challenged"), (3, "slashed"), (4, "seen")):
                c.execute(text(_REQUEST), {"rid": rid, "status": status})
        command.downgrade(alembic_config(db_url), "0006")
        db.engine.dispose()
        assert not OPTIMISTIC & columns(db, "requests")
        assert "watches" not in inspect(db.engine).get_table_names()
        assert "value" not in columns(db, "transactions")
        with db.engine.begin() as c:
            rows = sorted(c.execute(text("SELECT request_id, status FROM requests")).all())
        assert [tuple(r) for r in rows] == [
            (1, "submitted"),
            (2, "submitted"),
            (3, "abandoned"),
            (4, "seen"),
        ]
        db.upgrade("0007")
        assert columns(db, "requests") >= OPTIMISTIC
    finally:
        db.dispose()
