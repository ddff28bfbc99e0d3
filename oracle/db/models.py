"""Database schema (SQLAlchemy 2.0). Alembic migrations are the only way it is created.

uint256 values that can exceed 64 bits (fees, int256 inputs and outputs) are stored as
decimal text or JSON so SQLite and PostgreSQL keep every digit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from oracle.types import TxStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ChainCursor(Base):
    """How far the listener has read one Coordinator, and the hash it read there."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    coordinator: Mapped[str] = mapped_column(String(42), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    halted_reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BlockRecord(Base):
    """Hashes of recently processed blocks, to find the fork point after a reorg."""

    __tablename__ = "blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    coordinator: Mapped[str] = mapped_column(String(42), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))


class ModelRecord(Base):
    """A model this node can serve, mirrored from the on-chain registry."""

    __tablename__ = "models"

    # Content-addressed on-chain id (see oracle.models.registration.content_model_id).
    model_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    # SHA-256 of the ONNX file: the artifact store's key; the worker checks the file against it.
    onnx_hash: Mapped[str] = mapped_column(String(66))
    artifact_path: Mapped[str] = mapped_column(Text)
    input_length: Mapped[int] = mapped_column(Integer)
    output_length: Mapped[int] = mapped_column(Integer)
    input_scale: Mapped[int] = mapped_column(Integer)
    output_scale: Mapped[int] = mapped_column(Integer)
    verifier: Mapped[str | None] = mapped_column(String(42), default=None)
    owner: Mapped[str | None] = mapped_column(String(42), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Transaction(Base):
    """A signed transaction, saved before broadcast so a restart re-sends the same bytes.

    One row per nonce: a fee bump replaces its bytes (the old hashes are kept), a nonce-gap
    filler reuses it. The request it answers points here (``requests.fulfil_tx_id``)."""

    __tablename__ = "transactions"
    __table_args__ = (UniqueConstraint("chain_id", "sender", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[str] = mapped_column(String(80))
    max_priority_fee_per_gas: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    broadcast_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    broadcast_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Earlier hashes of this nonce's transaction, replaced by a fee bump: any may be mined.
    replaced_hashes: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    mined_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Wei the transaction carries (an optimistic answer's bond), decimal text.
    value: Mapped[str] = mapped_column(String(80), default="0", server_default="0")


class InferenceRequest(Base):
    """One on-chain request, from the log that announced it to its confirmed fulfilment."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("chain_id", "coordinator", "request_id"),
        Index("ix_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    coordinator: Mapped[str] = mapped_column(String(42))
    request_id: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[str] = mapped_column(String(66))
    consumer: Mapped[str] = mapped_column(String(42))
    input: Mapped[list[Any]] = mapped_column(JSON)
    mode: Mapped[int] = mapped_column(Integer)
    callback_gas_limit: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[str] = mapped_column(String(80))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    # The node the Coordinator assigned the request to, and the block from which any node
    # serving the model may answer (None: a Coordinator without assignment).
    assignee: Mapped[str | None] = mapped_column(String(42), default=None)
    exclusive_until_block: Mapped[int | None] = mapped_column(BigInteger, default=None)

    status: Mapped[str] = mapped_column(String(16))
    output: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_succeeded: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # The transaction that answers this request (the latest attempt); None before sending.
    fulfil_tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), default=None)
    fulfil_reverts: Mapped[int] = mapped_column(Integer, default=0)  # fulfilments reverted
    # Zk mode: onnxruntime's float output, then the proof and the circuit's distance from it.
    reference_output: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    proof: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    proof_attempts: Mapped[int] = mapped_column(Integer, default=0)
    circuit_deviation: Mapped[float | None] = mapped_column(Float, default=None)
    # Optimistic mode: our posted answer (its ``OptimisticAnswerPosted`` log) and its dispute.
    claim_node: Mapped[str | None] = mapped_column(String(42), default=None)
    claim_bond: Mapped[str | None] = mapped_column(String(80), default=None)
    challenge_deadline: Mapped[int | None] = mapped_column(BigInteger, default=None)
    proof_deadline: Mapped[int | None] = mapped_column(BigInteger, default=None)
    challenger: Mapped[str | None] = mapped_column(String(42), default=None)
    challenger_bond: Mapped[str | None] = mapped_column(String(80), default=None)
    # The transaction that posted our optimistic answer, kept once ``fulfil_tx_id`` moves on to
    # the one that finalises or proves it.
    post_tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"), default=None)

    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    inferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    inference_s: Mapped[float | None] = mapped_column(Float, default=None)
    proving_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    proved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    prove_s: Mapped[float | None] = mapped_column(Float, default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    # Derived, read-only: the block of the confirmed fulfilment (None until confirmed).
    fulfilled_block: Mapped[int | None] = column_property(
        select(Transaction.mined_block)
        .where(Transaction.id == fulfil_tx_id, Transaction.status == TxStatus.CONFIRMED.value)
        .scalar_subquery()
    )


class Watch(Base):
    """One optimistic answer (of any node) the watcher checked against the circuit, and what
    it did about it: unique per request and posting block (a re-opened request answered
    optimistically again is another watch)."""

    __tablename__ = "watches"
    __table_args__ = (
        UniqueConstraint("chain_id", "coordinator", "request_id", "posted_block"),
        Index("ix_watches_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    coordinator: Mapped[str] = mapped_column(String(42))
    request_id: Mapped[int] = mapped_column(BigInteger)
    posted_block: Mapped[int] = mapped_column(BigInteger)
    model_id: Mapped[str] = mapped_column(String(66))
    node: Mapped[str] = mapped_column(String(42))
    posted_output: Mapped[list[Any]] = mapped_column(JSON)
    # What the circuit gives for the request's input (None: not checked, see ``verdict``).
    circuit_output: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    bond: Mapped[str] = mapped_column(String(80))
    challenge_deadline: Mapped[int] = mapped_column(BigInteger)
    proof_deadline: Mapped[int] = mapped_column(BigInteger)
    # WatchVerdict: agrees, differs, skipped (not watched: model off, not held, over budget)
    verdict: Mapped[str] = mapped_column(String(16))
    # WatchStatus: see oracle.types
    status: Mapped[str] = mapped_column(String(16))
    challenge_tx: Mapped[str | None] = mapped_column(String(66), default=None)
    challenger_bond: Mapped[str | None] = mapped_column(String(80), default=None)
    resolve_tx: Mapped[str | None] = mapped_column(String(66), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
