"""Small shared types: ids, amounts, trust modes and pipeline states."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NewType

ModelId = NewType("ModelId", str)
"""0x-prefixed hex on-chain model id (``bytes32``), content-addressed: the keccak256 of the
ONNX hash, the verifier's code hash, the lengths and the scales (see
:func:`oracle.models.registration.content_model_id`). Not the ONNX file's hash."""

OnnxHash = NewType("OnnxHash", str)
"""0x-prefixed hex SHA-256 of an ONNX file's bytes: the artifact store's key for the file."""

RequestId = NewType("RequestId", int)
"""The Coordinator's sequential request id."""

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
    ERRORED = "errored"  # an error answer was confirmed on chain: the consumer heard back
    ABANDONED = "abandoned"  # the node gave up: no answer of ours will land
    REORGED = "reorged"
    CANCELLED = "cancelled"
    STANDBY = "standby"  # assigned to another node, inside its exclusive window: not ours yet
    UNSERVED = "unserved"  # this node does not hold the model: left to a node that does
    # Optimistic mode (our answer was posted with a bond):
    POSTED = "posted"  # on chain, its challenge window runs; finalised by us after it
    CHALLENGED = "challenged"  # disputed: a proof is owed by the proof deadline
    SLASHED = "slashed"  # not proven in time: bond and stake taken, request re-opened in Zk


class WatchVerdict(enum.StrEnum):
    """What the watcher made of another node's optimistic answer."""

    AGREES = "agrees"  # the circuit gives the posted output
    DIFFERS = "differs"  # it does not: a challenge is due
    SKIPPED = "skipped"  # not checked (model switched off or not held, budget spent)


class WatchStatus(enum.StrEnum):
    """Where the watcher is with one answer."""

    WATCHING = "watching"  # nothing to do (agrees / skipped), kept until its window ends
    CHALLENGING = "challenging"  # challenge sent, not yet seen mined
    CHALLENGED = "challenged"  # our challenge is on chain; the node owes a proof
    WON = "won"  # not proven: we resolved it (slashed); our bond and share are owed to us
    LOST = "lost"  # proven after all: our bond went to the node
    CLOSED = "closed"  # window ended with nothing to do, or someone else challenged first


class HealthCode(enum.StrEnum):
    """Why a part of the node is not healthy: a stable code for probes, dashboards and alerts.

    The node's health is *down* (HTTP 503) for codes in :data:`DOWN_CODES`, *degraded*
    (HTTP 206) for the others, and healthy (HTTP 200) when no part reports one."""

    LISTENER_HALTED = "listener_halted"  # a reorg deeper than finality: refuses to guess
    LISTENER_STALE = "listener_stale"  # has not completed a poll recently
    RELAYER_STALE = "relayer_stale"  # has not completed a round recently
    SIGNER_UNFUNDED = "signer_unfunded"  # the signer cannot pay for gas: work waits
    BROADCAST_FAILING = "broadcast_failing"  # the RPC refuses our transactions
    FULFIL_BLOCKED = "fulfil_blocked"  # simulation reverts for a reason that may pass
    ANSWERS_RETRYING = "answers_retrying"  # answers wait to be tried again (why: in detail)


@dataclass(frozen=True)
class HealthProblem:
    """What is wrong with a part of the node: a stable code and a human-readable detail."""

    code: HealthCode
    detail: str


DOWN_CODES = frozenset(
    {HealthCode.LISTENER_HALTED, HealthCode.LISTENER_STALE, HealthCode.RELAYER_STALE}
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
