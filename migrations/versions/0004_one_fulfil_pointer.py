"""one fulfilment pointer, derived state dropped, failed split into errored / abandoned

- ``requests.fulfil_tx_hash`` and ``transactions.request_pk`` pointed both ways: replaced by
  ``requests.fulfil_tx_id`` (FK to ``transactions.id``).
- ``requests.fulfil_reverts`` counts reverted fulfilments (was counted over ``request_pk``).
- ``requests.fulfilled_block`` (a copy of the tx's ``mined_block``) and
  ``transactions.receipt_status`` (a copy of the tx's status) are dropped: derived instead.
- ``models.zk_path``, ``srs_path``, ``dev_srs`` were never read: dropped.
- status ``failed`` becomes ``errored`` (an error answer confirmed on chain) or
  ``abandoned`` (the node gave up).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FK_REQUEST_TX = "fk_requests_fulfil_tx_id_transactions"
_FK_TX_REQUEST = "fk_transactions_request_pk_requests"


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("fulfil_tx_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("fulfil_reverts", sa.Integer(), nullable=False, server_default="0")
        )
    # The pointer: the tx that carries the row's hash, else the row's latest tx.
    op.execute(
        """
        UPDATE requests SET fulfil_tx_id = COALESCE(
            (SELECT t.id FROM transactions t WHERE t.tx_hash = requests.fulfil_tx_hash),
            (SELECT MAX(t.id) FROM transactions t WHERE t.request_pk = requests.id)
        )
        """
    )
    op.execute(
        """
        UPDATE requests SET fulfil_reverts = (
            SELECT COUNT(*) FROM transactions t
            WHERE t.request_pk = requests.id AND t.status = 'reverted'
        )
        """
    )
    op.execute(
        """
        UPDATE requests SET status = CASE
            WHEN error IS NOT NULL AND EXISTS (
                SELECT 1 FROM transactions t
                WHERE t.id = requests.fulfil_tx_id AND t.status = 'confirmed'
            ) THEN 'errored'
            ELSE 'abandoned'
        END
        WHERE status = 'failed'
        """
    )
    with op.batch_alter_table("requests") as batch:
        batch.create_foreign_key(_FK_REQUEST_TX, "transactions", ["fulfil_tx_id"], ["id"])
        batch.drop_column("fulfil_tx_hash")
        batch.drop_column("fulfilled_block")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_constraint(_FK_TX_REQUEST, type_="foreignkey")
        batch.drop_column("request_pk")
        batch.drop_column("receipt_status")
    with op.batch_alter_table("models") as batch:
        for name in ("dev_srs", "srs_path", "zk_path"):
            batch.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("zk_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("srs_path", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("dev_srs", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("request_pk", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("receipt_status", sa.Integer(), nullable=True))
        batch.create_foreign_key(_FK_TX_REQUEST, "requests", ["request_pk"], ["id"])
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("fulfil_tx_hash", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("fulfilled_block", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE transactions SET
            request_pk = (SELECT MAX(r.id) FROM requests r WHERE r.fulfil_tx_id = transactions.id),
            receipt_status = CASE status WHEN 'confirmed' THEN 1 WHEN 'reverted' THEN 0 END
        """
    )
    op.execute(
        """
        UPDATE requests SET
            fulfil_tx_hash = (SELECT t.tx_hash FROM transactions t
                              WHERE t.id = requests.fulfil_tx_id),
            fulfilled_block = (SELECT t.mined_block FROM transactions t
                               WHERE t.id = requests.fulfil_tx_id AND t.status = 'confirmed')
        """
    )
    op.execute("UPDATE requests SET status = 'failed' WHERE status IN ('errored', 'abandoned')")
    with op.batch_alter_table("requests") as batch:
        batch.drop_constraint(_FK_REQUEST_TX, type_="foreignkey")
        batch.drop_column("fulfil_reverts")
        batch.drop_column("fulfil_tx_id")
