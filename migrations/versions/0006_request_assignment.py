"""request assignment: the node a request is assigned to and the end of its exclusive window

- ``requests.assignee``: the node the Coordinator assigned the request to (its
  ``RequestAssigned`` log); NULL for requests read from a Coordinator without assignment.
- ``requests.exclusive_until_block``: from this block on, any node serving the model may
  answer.
- new statuses: ``standby`` (assigned to another node, inside its window) and ``unserved``
  (this node does not hold the model: nothing is sent). The downgrade turns ``standby`` into
  ``seen`` (the old node works every request) and ``unserved`` into ``abandoned``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("assignee", sa.String(length=42), nullable=True))
        batch.add_column(sa.Column("exclusive_until_block", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE requests SET status = 'seen' WHERE status = 'standby'")
    op.execute("UPDATE requests SET status = 'abandoned' WHERE status = 'unserved'")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("exclusive_until_block")
        batch.drop_column("assignee")
