"""Answers the relayer could not send this round, why, and when it tries each again.

What it guarantees: a simulation that fails is that answer's problem, never the round's. The
broadcaster records the answer here and goes on with the others; each kind of failure has a
bound, so no request can make the node spend a failed simulation every round for its
lifetime:

- *out of gas*: retried at once, alone, with twice the gas, up to ``relayer.max_answer_gas``
  (the broadcaster's loop); past the cap the answer becomes an error answer, which carries no
  output, and if even that cannot land the request is abandoned with a reason code;
- *a revert that passes by waiting* (``NotAssignedNode``: another node's exclusive window;
  ``ChallengeWindowOpen``: simulated a block early; ``NotActiveNode``: our stake is not
  active yet): tried again after a backoff that doubles from one block up to
  ``relayer.retry_backoff_max_blocks``, at most ``relayer.max_transient_retries`` times, then
  abandoned with a reason code (the request's own deadline usually ends it sooner);
- *anything else* is not a reason to wait and is never recorded here: the answer becomes an
  error answer the consumer can act on, or the request is closed.

What it does not do is persist: after a restart every answer starts again from the gas its
shape is allowed (:mod:`oracle.relayer.gas`), which costs at most one simulation each.
The node's health (``answers_retrying``) and ``oracle_relayer_retrying_answers{reason}`` read
:meth:`RetryBook.reasons`.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Retry:
    """One answer waiting to be tried again."""

    attempts: int  # failed simulations so far
    next_block: int  # not tried again before this head
    reason: str  # a stable code: out_of_gas, or the revert's name


class RetryBook:
    """In-memory retry state of one relayer, keyed by request row id; thread-safe (the
    metrics endpoint reads it from another thread)."""

    def __init__(self, max_transient: int, backoff_max_blocks: int) -> None:
        self.max_transient = max_transient
        self.backoff_max_blocks = backoff_max_blocks
        self._retries: dict[int, Retry] = {}
        self._lock = threading.Lock()

    def due(self, row_id: int, head: int) -> bool:
        """Whether the answer may be tried at ``head`` (always, when nothing is recorded)."""
        with self._lock:
            retry = self._retries.get(row_id)
        return retry is None or head >= retry.next_block

    def transient(self, row_id: int, reason: str, head: int) -> bool:
        """Record a failure that may pass by waiting; False when the answer has used up its
        retries (the caller then gives it up)."""
        with self._lock:
            before = self._retries.get(row_id)
            attempts = (before.attempts if before is not None else 0) + 1
            if attempts > self.max_transient:
                self._retries.pop(row_id, None)
                return False
            backoff = min(2 ** (attempts - 1), self.backoff_max_blocks)
            self._retries[row_id] = Retry(attempts, head + backoff, reason)
            return True

    def clear(self, row_id: int) -> None:
        """The answer was sent, or given up: nothing to retry."""
        with self._lock:
            self._retries.pop(row_id, None)

    def reasons(self) -> dict[str, int]:
        """How many answers wait to be retried, by reason."""
        with self._lock:
            return dict(Counter(r.reason for r in self._retries.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._retries)
