"""Migration 0005 on existing rows, up and down, on SQLite and PostgreSQL: a model row
written when the model id was the file's SHA-256 gets that hash as its ``onnx_hash``, and
the downgrade drops the column again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from oracle.db import Database, ModelRecord
from oracle.db.session import alembic_config

_MODEL = (
    "INSERT INTO models (model_id, artifact_path, input_length, output_length, input_scale,"
    " output_scale, created_at) VALUES (:id, '/store/x.onnx', 4, 1, 16, 16, '2026-01-01')"
)
OLD_ID = "0x" + "8e" * 32


def test_0005_copies_the_file_hash_up_and_drops_it_down(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade("0004")
        with db.engine.begin() as c:
            c.execute(text(_MODEL), {"id": OLD_ID})
        db.upgrade()
        with db.session() as s:
            (row,) = s.scalars(select(ModelRecord)).all()
            assert (row.model_id, row.onnx_hash) == (OLD_ID, OLD_ID)
        command.downgrade(alembic_config(db_url), "0004")
        columns = {c["name"] for c in inspect(db.engine).get_columns("models")}
        assert "onnx_hash" not in columns and "artifact_path" in columns
        with db.engine.begin() as c:
            assert c.execute(text("SELECT model_id FROM models")).scalar_one() == OLD_ID
    finally:
        db.dispose()
