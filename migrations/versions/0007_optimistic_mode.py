"""optimistic mode: a request's posted answer and its dispute; transaction values; the watcher

- ``requests``: ``claim_node``, ``claim_bond``, ``challenge_deadline``, ``proof_deadline``
  (the node's posted optimistic answer, from its ``OptimisticAnswerPosted`` log; NULL before
  one is posted), ``challenger`` and ``challenger_bond`` (from ``AnswerChallenged``), and
  ``post_tx_id``: the transaction that posted it, once ``fulfil_tx_id`` points at the one
  that finalises or proves it.
- new request statuses: ``posted`` (our answer is on chain, its windows run), ``challenged``
  (disputed: a proof is owed by ``proof_deadline``), ``slashed`` (not proven in time). The
  downgrade maps them onto ``submitted`` (posted, challenged) and ``abandoned`` (slashed).
- ``transactions.value``: wei the transaction carries (a bond), decimal text.
- ``watches``: one row per optimistic answer the watcher checked: what was posted, what the
  circuit says, the verdict, and its challenge and resolution transactions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("claim_node", sa.String(length=42), nullable=True))
        batch.add_column(sa.Column("claim_bond", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("challenge_deadline", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("proof_deadline", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("challenger", sa.String(length=42), nullable=True))
        batch.add_column(sa.Column("challenger_bond", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("post_tx_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_requests_post_tx_id_transactions"), "transactions", ["post_tx_id"], ["id"]
        )
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(
            sa.Column("value", sa.String(length=80), nullable=False, server_default="0")
        )
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("coordinator", sa.String(length=42), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("posted_block", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.String(length=66), nullable=False),
        sa.Column("node", sa.String(length=42), nullable=False),
        sa.Column("posted_output", sa.JSON(), nullable=False),
        sa.Column("circuit_output", sa.JSON(), nullable=True),
        sa.Column("bond", sa.String(length=80), nullable=False),
        sa.Column("challenge_deadline", sa.BigInteger(), nullable=False),
        sa.Column("proof_deadline", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("challenge_tx", sa.String(length=66), nullable=True),
        sa.Column("challenger_bond", sa.String(length=80), nullable=True),
        sa.Column("resolve_tx", sa.String(length=66), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watches")),
        sa.UniqueConstraint(
            "chain_id",
            "coordinator",
            "request_id",
            "posted_block",
            name=op.f("uq_watches_chain_id"),
        ),
    )
    op.create_index("ix_watches_status", "watches", ["status"])


def downgrade() -> None:
    op.drop_index("ix_watches_status", table_name="watches")
    op.drop_table("watches")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("value")
    op.execute("UPDATE requests SET status = 'submitted' WHERE status IN ('posted', 'challenged')")
    op.execute("UPDATE requests SET status = 'abandoned' WHERE status = 'slashed'")
    with op.batch_alter_table("requests") as batch:
        batch.drop_constraint(op.f("fk_requests_post_tx_id_transactions"), type_="foreignkey")
        for column in (
            "post_tx_id",
            "challenger_bond",
            "challenger",
            "proof_deadline",
            "challenge_deadline",
            "claim_bond",
            "claim_node",
        ):
            batch.drop_column(column)
