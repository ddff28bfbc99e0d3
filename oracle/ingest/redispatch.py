"""Handing rows to the workers, and handing them again when a hand-over was lost.

:meth:`Redispatcher.hand_over` enqueues one row and marks it ``queued``. The long-running
part finds rows whose hand-over was lost and repeats it: rows a crash left ``seen``
(inserted, never enqueued), ``queued`` rows no worker started (the broker lost the
message), and ``proving`` rows whose prover went quiet (killed, or the job was lost). It hands
``challenged`` rows (a proof of our optimistic answer is owed) to the prover at once, ahead
of other proof jobs, and again if the prover went quiet.

It also takes over ``standby`` rows (requests the Coordinator assigned to another node)
once their exclusive window has passed: still pending on chain, the assigned node did not
answer in time, so this node works the request; no longer pending, it was answered (or
cancelled) and the row is closed as ``cancelled`` without any work.

What it guarantees: a row that sits in one of those states past its threshold is enqueued
again. What it does not: that a job runs once. The workers' conditional claims make a
duplicate job harmless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import func, select, update

from oracle.chain.client import CoordinatorClient
from oracle.db import Database, InferenceRequest
from oracle.db.models import utcnow
from oracle.db.rows import update_request_if
from oracle.types import RequestStatus

log = structlog.get_logger(__name__)

Enqueue = Callable[[int], None]


class EnqueueProof(Protocol):
    """Hands a row to the proof queue; ``urgent`` jobs (a challenge waits) go first."""

    def __call__(self, row_id: int, urgent: bool = False) -> None: ...


SEEN_GRACE_S = 30.0
"""A ``seen`` row younger than this may still be on its way to the queue from the listener."""


class Redispatcher:
    """Owns every hand-over of request rows to the inference and proof queues."""

    name = "redispatcher"

    def __init__(
        self,
        db: Database,
        chain_id: int,
        coordinator: str,
        enqueue_inference: Enqueue,
        enqueue_proof: EnqueueProof | Enqueue | None = None,
        requeue_after_s: float = 300.0,
        proof_timeout_s: float = 600.0,
        interval_s: float = 1.0,
        chain: CoordinatorClient | None = None,
    ) -> None:
        """``chain`` (its own connection: this part runs in its own thread) is read to
        take over ``standby`` rows; without it they stay standby."""
        self.db = db
        self.chain_id = chain_id
        self.coordinator = coordinator
        self.enqueue_inference = enqueue_inference
        self.enqueue_proof = enqueue_proof
        self.requeue_after_s = requeue_after_s
        self.proof_timeout_s = proof_timeout_s
        self.interval_s = interval_s
        self.chain = chain
        self._timeout_blocks: int | None = None
        self._stop = threading.Event()
        self.log = log.bind(chain_id=chain_id, coordinator=coordinator)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Hand over what a crash left behind before anything new comes in."""
        self._stop.clear()
        self.dispatch_pending(older_than_s=0)

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.dispatch_pending(older_than_s=SEEN_GRACE_S)
                self.take_over_due()
            except Exception as exc:
                self.log.warning(
                    "redispatch.round_failed", error=type(exc).__name__, detail=str(exc)
                )

    def stop(self) -> None:
        self._stop.set()

    # -- hand-overs ------------------------------------------------------------------
    def hand_over(self, row_id: int) -> None:
        """Enqueue one row for inference and mark it ``queued`` (if it is not further)."""
        self.hand_over_many([row_id])

    def hand_over_many(self, row_ids: list[int]) -> None:
        """Enqueue rows for inference, then mark them ``queued`` (those not further) in one
        write: a burst of new rows costs one database round trip, not one each. A crash
        between the two leaves them ``seen``, which :meth:`dispatch_pending` hands over."""
        if not row_ids:
            return
        for row_id in row_ids:
            self.enqueue_inference(row_id)
        with self.db.session() as s:
            s.execute(
                update(InferenceRequest)
                .where(
                    InferenceRequest.id.in_(row_ids),
                    InferenceRequest.status.in_(
                        (RequestStatus.SEEN.value, RequestStatus.QUEUED.value)
                    ),
                )
                .values(status=RequestStatus.QUEUED.value, queued_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def dispatch_pending(self, older_than_s: float) -> int:
        """Hand over rows left ``seen`` (and ``queued`` ones that went stale), and stale
        proof jobs. Returns how many were handed over."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(InferenceRequest.id).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator,
                        (
                            (InferenceRequest.status == RequestStatus.SEEN.value)
                            & (InferenceRequest.seen_at <= cutoff)
                        )
                        | (
                            (InferenceRequest.status == RequestStatus.QUEUED.value)
                            & (
                                InferenceRequest.queued_at
                                <= cutoff - timedelta(seconds=self.requeue_after_s)
                            )
                        ),
                    )
                )
            )
        self.hand_over_many(ids)
        return len(ids) + self._redispatch_stale_proofs()

    def take_over_due(self) -> int:
        """Standby rows whose exclusive window is over at the head (the relayer simulates
        there): hand over those still pending on chain, close the others (answered,
        cancelled, or expired). Returns how many were handed over."""
        if self.chain is None:
            return 0
        with self.db.session() as s:
            standby = list(
                s.execute(
                    select(
                        InferenceRequest.id,
                        InferenceRequest.request_id,
                        InferenceRequest.exclusive_until_block,
                        InferenceRequest.block_number,
                    ).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator,
                        InferenceRequest.status == RequestStatus.STANDBY.value,
                    )
                )
            )
        if not standby:
            return 0
        head = int(self.chain.w3.eth.block_number)
        if self._timeout_blocks is None:
            self._timeout_blocks = int(self.chain.contract.functions.requestTimeoutBlocks().call())
        taken = 0
        for row_id, request_id, until, requested_at in standby:
            if until is not None and until > head:
                continue
            if head >= requested_at + self._timeout_blocks:
                pending, reason = False, "expired inside its assigned node's window"
            else:
                pending = self.chain.commitment(request_id) != bytes(32)
                reason = "not pending on chain: answered by its assigned node, or cancelled"
            values = (
                {"status": RequestStatus.SEEN.value, "seen_at": utcnow()}
                if pending
                else {"status": RequestStatus.CANCELLED.value, "error": reason}
            )
            with self.db.session() as s:
                moved = update_request_if(
                    s, row_id, values, statuses=(RequestStatus.STANDBY.value,)
                )
            if moved and pending:
                self.log.info("redispatch.take_over", request_id=request_id, request_pk=row_id)
                self.hand_over(row_id)
                taken += 1
        return taken

    def _redispatch_stale_proofs(self) -> int:
        """Hand out again proof jobs whose prover went quiet (killed, broker lost the job);
        hand out proofs owed to a challenge at once, ahead of other jobs."""
        cutoff = utcnow() - timedelta(seconds=self.proof_timeout_s)
        stale = (InferenceRequest.status == RequestStatus.PROVING.value) & (
            func.coalesce(InferenceRequest.proving_at, InferenceRequest.inferred_at) <= cutoff
        )
        challenged = (InferenceRequest.status == RequestStatus.CHALLENGED.value) & (
            InferenceRequest.proving_at.is_(None) | (InferenceRequest.proving_at <= cutoff)
        )
        return self._hand_out_proofs(stale, urgent=False) + self._hand_out_proofs(
            challenged, urgent=True
        )

    def _hand_out_proofs(self, where: Any, urgent: bool) -> int:
        """Enqueue the proof jobs of the rows ``where`` selects, marking them handed out now
        (so they are handed out again only if the prover goes quiet)."""
        if self.enqueue_proof is None:
            return 0
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(InferenceRequest).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator,
                        where,
                    )
                )
            )
            for row in rows:
                row.proving_at = utcnow()
            ids = [row.id for row in rows]
        for row_id in ids:
            self.log.warning("redispatch.proof", request_pk=row_id, urgent=urgent)
            if urgent:
                self.enqueue_proof(row_id, urgent=True)  # type: ignore[call-arg]
            else:
                self.enqueue_proof(row_id)
        return len(ids)
