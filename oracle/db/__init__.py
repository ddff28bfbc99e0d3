"""Durable state: SQLAlchemy models, sessions and migrations."""

from oracle.db.models import (
    Base,
    BlockRecord,
    ChainCursor,
    InferenceRequest,
    ModelRecord,
    Transaction,
    Watch,
)
from oracle.db.session import Database

__all__ = [
    "Base",
    "BlockRecord",
    "ChainCursor",
    "Database",
    "InferenceRequest",
    "ModelRecord",
    "Transaction",
    "Watch",
]
