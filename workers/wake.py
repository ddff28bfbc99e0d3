"""Wake the relayer after a stage finishes a row (one Redis notifier per Coordinator)."""

from __future__ import annotations

import structlog

from oracle.db import Database, InferenceRequest
from oracle.relayer.wake import Notifier

log = structlog.get_logger(__name__)

_notifiers: dict[tuple[str, int, str], Notifier] = {}


def reset() -> None:
    """Forget connections (after a fork)."""
    _notifiers.clear()


def wake_relayer(db: Database, redis_url: str, row_id: int) -> None:
    with db.session() as s:
        row = s.get(InferenceRequest, row_id)
        if row is None:
            return
        key = (redis_url, row.chain_id, row.coordinator)
    notifier = _notifiers.get(key)
    if notifier is None:
        notifier = Notifier(redis_url, key[1], key[2])
        _notifiers[key] = notifier
    try:
        notifier.wake()
    except Exception:
        log.warning("worker.wake_failed", request_pk=row_id)
