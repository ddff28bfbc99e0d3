"""The claim keeper: our optimistic answers while their challenge window runs.

What it guarantees: every ``AnswerChallenged`` log against an answer of ours that the
database holds as ``posted`` moves that row to ``challenged`` (with the challenger and its
bond), where the re-dispatcher hands it to the prover ahead of other proof jobs; the relayer
then sends ``proveOptimistic`` once the proof is in. It reads the logs once per new head,
from where it stopped (after a restart: from the oldest posted row's request block).

What it leaves to others: finalising an unchallenged answer once its window is over (the
broadcaster sends ``finalize`` for ``posted`` rows whose window has passed), and recording
what happened to an answer resolved by somebody else (the confirmer's ``not_pending``).
"""

from __future__ import annotations

import structlog

from oracle.chain.client import CoordinatorClient
from oracle.relayer.attempts import Head
from oracle.relayer.store import RelayerStore

log = structlog.get_logger(__name__)


class ClaimKeeper:
    """Follows challenges against one signer's posted optimistic answers."""

    def __init__(self, coordinator: CoordinatorClient, store: RelayerStore, sender: str) -> None:
        self.coordinator = coordinator
        self.store = store
        self.sender = sender
        self._next_block: int | None = None
        self.log = log.bind(signer=sender)

    def check(self, head: Head) -> int:
        """Mark our posted answers challenged since the last look; how many posted answers
        it follows (0: nothing to watch)."""
        posted = {row.request_id: row for row in self.store.posted_requests()}
        if not posted:
            self._next_block = None  # nothing to follow: read afresh when something is posted
            return 0
        start = self._next_block
        if start is None:
            start = min(row.block_number for row in posted.values())
        if start > head.number:
            return len(posted)
        for challenge in self.coordinator.challenge_logs(start, head.number):
            row = posted.get(challenge.request_id)
            if row is None or row.claim_node != self.sender:
                continue
            if self.store.mark_challenged(row, challenge.challenger, challenge.bond):
                self.log.warning(
                    "relayer.challenged",
                    request_id=row.request_id,
                    challenger=challenge.challenger,
                    proof_deadline=row.proof_deadline,
                )
        self._next_block = head.number + 1
        return len(posted)
