"""What the node reports about itself from the database: request counts by state and the
listener's cursors. Read by the HTTP endpoint and by ``oracle status``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from oracle.db import ChainCursor, Database, InferenceRequest


def collect_status(
    db: Database, chain_id: int | None = None, coordinator: str | None = None
) -> dict[str, Any]:
    """Counts per request state, and each cursor. Filters by chain/coordinator when given."""
    with db.session() as s:
        q = select(InferenceRequest.status, func.count()).group_by(InferenceRequest.status)
        cq = select(ChainCursor)
        if chain_id is not None:
            q = q.where(InferenceRequest.chain_id == chain_id)
            cq = cq.where(ChainCursor.chain_id == chain_id)
        if coordinator is not None:
            q = q.where(InferenceRequest.coordinator == coordinator)
            cq = cq.where(ChainCursor.coordinator == coordinator)
        counts = {status: int(n) for status, n in s.execute(q)}
        cursors = [
            {
                "chain_id": c.chain_id,
                "coordinator": c.coordinator,
                "block": c.block_number,
                "halted": c.halted_reason,
            }
            for c in s.scalars(cq)
        ]
    return {"requests": counts, "cursors": cursors}
