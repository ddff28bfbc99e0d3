"""Small shared types: ids, amounts, trust modes and pipeline states."""

from __future__ import annotations

import enum
from typing import NewType

ModelId = NewType("ModelId", str)
"""0x-prefixed hex SHA-256 of an ONNX file's bytes (the on-chain ``bytes32``)."""

RequestId = NewType("RequestId", int)
"""The Coordinator's sequential request id."""

Wei = NewType("Wei", int)
ChainId = NewType("ChainId", int)


class Mode(enum.IntEnum):
    """Trust mode chosen per request (the ``uint8 mode`` on chain)."""

    NONE = 0
    ZK = 1
    OPTIMISTIC = 2


class RequestStatus(enum.StrEnum):
    """Where a request is in the pipeline. See DESIGN.md, "Request states"."""

    SEEN = "seen"
    QUEUED = "queued"
    INFERRED = "inferred"
    PROVING = "proving"
    PROVED = "proved"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REORGED = "reorged"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset(
    {RequestStatus.CONFIRMED, RequestStatus.REORGED, RequestStatus.CANCELLED}
)


class TxStatus(enum.StrEnum):
    """Life of one signed transaction in the relayer's table."""

    SIGNED = "signed"
    BROADCAST = "broadcast"
    MINED = "mined"
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    DROPPED = "dropped"


def model_id_from_bytes(raw: bytes) -> ModelId:
    """Normalise a 32-byte model id to lower-case 0x-hex."""
    if len(raw) != 32:
        raise ValueError(f"a model id is 32 bytes, got {len(raw)}")
    return ModelId("0x" + raw.hex())


def parse_model_id(text: str) -> ModelId:
    """Validate and normalise a user-supplied model id (0x + 64 hex digits)."""
    body = text[2:] if text.lower().startswith("0x") else text
    if len(body) != 64:
        raise ValueError(f"a model id is 64 hex digits, got {len(body)}: {text!r}")
    try:
        raw = bytes.fromhex(body)
    except ValueError as exc:
        raise ValueError(f"a model id must be hex: {text!r}") from exc
    return model_id_from_bytes(raw)
