"""The one compare-and-set on request rows.

Several processes write the same request row: the listener (a reorg rewrites or removes a
row), the workers (claim, result) and the relayer (sent, confirmed, re-queued). Each write
is decided on an earlier read, so each is made conditional on what was read: one UPDATE
whose WHERE holds the conditions, atomic on SQLite and PostgreSQL alike. The caller learns
whether the row was still as it saw it; what to do when it was not is the caller's call.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from oracle.db.models import InferenceRequest


class _Unset:
    """Marks a condition that is not checked (None is a value: "points at no tx")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def update_request_if(
    s: Session,
    row_id: int,
    values: Mapping[str, Any],
    *,
    statuses: Collection[str],
    block_hash: str | None = None,
    fulfil_tx_id: int | _Unset | None = UNSET,
    attempts: int | None = None,
) -> bool:
    """Write ``values`` to request ``row_id`` only if its status is one of ``statuses``,
    its block hash is ``block_hash`` (when given), its fulfilment pointer is
    ``fulfil_tx_id`` (when given; None means "no tx") and its attempt count is
    ``attempts`` (when given). True if the row was written."""
    conditions = [InferenceRequest.id == row_id, InferenceRequest.status.in_(tuple(statuses))]
    if block_hash is not None:
        conditions.append(InferenceRequest.block_hash == block_hash)
    if fulfil_tx_id is None:
        conditions.append(InferenceRequest.fulfil_tx_id.is_(None))
    elif not isinstance(fulfil_tx_id, _Unset):
        conditions.append(InferenceRequest.fulfil_tx_id == fulfil_tx_id)
    if attempts is not None:
        conditions.append(InferenceRequest.attempts == attempts)
    result = s.execute(
        update(InferenceRequest)
        .where(*conditions)
        .values(dict(values))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]
