"""fee bumps: the block a tx was broadcast at, and the hashes it replaced

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("broadcast_block", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("replaced_hashes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("replaced_hashes")
        batch.drop_column("broadcast_block")
