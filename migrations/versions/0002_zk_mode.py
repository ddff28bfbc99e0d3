"""zk mode: circuit artifacts per model, proofs per request

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("zk_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("srs_path", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("dev_srs", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("reference_output", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("proof", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("proof_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("circuit_deviation", sa.Float(), nullable=True))
        batch.add_column(sa.Column("proving_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("proved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("prove_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        for name in (
            "prove_s",
            "proved_at",
            "proving_at",
            "circuit_deviation",
            "proof_attempts",
            "proof",
            "reference_output",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("models") as batch:
        for name in ("dev_srs", "srs_path", "zk_path"):
            batch.drop_column(name)
