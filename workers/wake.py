"""Wake the relayer after a stage finishes a row (one Redis notifier per Coordinator)."""

from __future__ import annotations

import structlog
from sqlalchemy import select

from oracle.db import Database, InferenceRequest
from oracle.relayer.wake import Notifier

log = structlog.get_logger(__name__)

_notifiers: dict[tuple[str, int, str], Notifier] = {}


def reset() -> None:
    """Forget connections (after a fork)."""
    _notifiers.clear()


def wake_relayer(db: Database, redis_url: str, row_id: int) -> None:
    """Wake the relayer of the row's Coordinator (two columns read, no ORM object)."""
    with db.engine.connect() as conn:
        found = conn.execute(
            select(InferenceRequest.chain_id, InferenceRequest.coordinator).where(
                InferenceRequest.id == row_id
            )
        ).first()
    if found is None:
        return
    key = (redis_url, int(found.chain_id), str(found.coordinator))
    notifier = _notifiers.get(key)
    if notifier is None:
        notifier = Notifier(redis_url, key[1], key[2])
        _notifiers[key] = notifier
    try:
        notifier.wake()
    except Exception:
        log.warning("worker.wake_failed", request_pk=row_id)
