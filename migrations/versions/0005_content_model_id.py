"""content-addressed model ids: ``models.onnx_hash``

A model id used to be the SHA-256 of the ONNX file; the Coordinator now derives it from the
file's hash, the verifier's code hash, the lengths and the scales. The file's hash gets its
own column (the artifact store's key, checked by the inference worker). Rows written before
this revision were keyed by the file's hash, so it is copied from ``model_id``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("onnx_hash", sa.String(length=66), nullable=True))
    op.execute("UPDATE models SET onnx_hash = model_id")
    with op.batch_alter_table("models") as batch:
        batch.alter_column("onnx_hash", existing_type=sa.String(length=66), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("onnx_hash")
