"""Migration 0004 on existing rows, up and down, on SQLite and PostgreSQL: the fulfilment
pointer, the revert counter and the failed -> errored / abandoned split are derived from
what 0003 stored, and the downgrade gives the old columns back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, text

from oracle.db import Database, InferenceRequest
from oracle.db.session import alembic_config

_REQUEST = (
    "INSERT INTO requests (id, chain_id, coordinator, request_id, model_id, consumer, input,"
    " mode, callback_gas_limit, fee, block_number, block_hash, tx_hash, log_index, status,"
    " error, attempts, fulfil_tx_hash, seen_at, updated_at, proof_attempts) VALUES"
    " (:id, 1, 'c', :id, 'm', 'c', '[]', 0, 1, '1', 1, 'h', 't', 0, 'failed', 'boom', 0,"
    " :tx_hash, '2026-01-01', '2026-01-01', 0)"
)
_TX = (
    "INSERT INTO transactions (id, chain_id, sender, nonce, request_pk, tx_hash, raw, status,"
    " gas_limit, max_fee_per_gas, max_priority_fee_per_gas, created_at, mined_block,"
    " receipt_status) VALUES (:id, 1, 's', :id, :id, :tx_hash, :raw, :status, 1, '1', '1',"
    " '2026-01-01', :block, :receipt)"
)


def test_0004_moves_rows_up_and_down(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade("0003")
        with db.engine.begin() as c:
            c.execute(text(_REQUEST), [{"id": 1, "tx_hash": "0xaa"}, {"id": 2, "tx_hash": "0xbb"}])
            c.execute(
                text(_TX),
                [
                    {"id": 1, "tx_hash": "0xaa", "raw": b"\0", "status": "confirmed",
                     "block": 7, "receipt": 1},
                    {"id": 2, "tx_hash": "0xbb", "raw": b"\0", "status": "reverted",
                     "block": 8, "receipt": 0},
                ],
            )  # fmt: skip
        db.upgrade()
        with db.session() as s:
            rows = {r.id: r for r in s.scalars(select(InferenceRequest))}
        # An error answer confirmed on chain, and a request the node gave up on.
        assert (rows[1].status, rows[1].fulfil_tx_id, rows[1].fulfilled_block) == ("errored", 1, 7)
        assert (rows[2].status, rows[2].fulfil_tx_id, rows[2].fulfilled_block) == (
            "abandoned",
            2,
            None,
        )
        assert rows[2].fulfil_reverts == 1
        command.downgrade(alembic_config(db_url), "0003")
        with db.engine.begin() as c:
            old = c.execute(
                text("SELECT id, status, fulfil_tx_hash, fulfilled_block FROM requests ORDER BY id")
            ).all()
            txs = c.execute(
                text("SELECT id, request_pk, receipt_status FROM transactions ORDER BY id")
            ).all()
        assert [tuple(r) for r in old] == [(1, "failed", "0xaa", 7), (2, "failed", "0xbb", None)]
        assert [tuple(t) for t in txs] == [(1, 1, 1), (2, 2, 0)]
        db.upgrade()
    finally:
        db.dispose()
