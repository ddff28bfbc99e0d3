"""The listener: Coordinator logs in, request rows out.

Each poll reads ``eth_getLogs`` over a bounded range that ends ``confirmations`` blocks
below the head, checks that the range's first block builds on the block the cursor last
saw (parent hash), and then, in one database transaction, inserts one row per request
(unique on chain id + coordinator + request id) and moves the cursor. Rows are handed to
the inference queue after that commit.

What the listener guarantees: every request on the canonical chain, ``confirmations``
deep, gets a row; a reorg that orphans a request's block marks its row ``reorged``; a
request that comes back in another block has its row reopened; a reorg deeper than
``finality_depth`` halts the listener instead of guessing. What it leaves to others:
handing over rows a crash left behind (:mod:`oracle.ingest.redispatch`) and the model
records (:mod:`oracle.ingest.mirror`).

A reorg that removes a request's block marks its row ``reorged`` whatever its state: a
fulfilment sent for it cannot land (the commitment holds the request's block), and one
that landed was in a later block, so the reorg removed it too (the relayer re-opens its
own transaction).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from web3 import Web3

from oracle.chain.client import CoordinatorClient
from oracle.errors import ChainError, ReorgTooDeepError
from oracle.ingest.store import Cursor, Header, ListenerStore
from oracle.settings import ChainSettings

log = structlog.get_logger(__name__)

Dispatch = Callable[[list[int]], None]  # hands new rows to the workers, in one go
Mirror = Callable[[set[str]], None]


@dataclass
class PollResult:
    new_rows: list[int]
    to_block: int | None
    reorg_from: int | None = None
    halted: bool = False


class Listener:
    """Reads one Coordinator on one chain into the database. A long-running part:
    :meth:`start`, :meth:`run` (until :meth:`stop`), :meth:`stop`."""

    name = "listener"

    def __init__(
        self,
        settings: ChainSettings,
        store: ListenerStore,
        coordinator: CoordinatorClient,
        chain_id: int,
        dispatch: Dispatch,
        mirror: Mirror | None = None,
        start_block: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.chain_id = chain_id
        self.address = coordinator.address
        self.dispatch = dispatch
        self.mirror = mirror
        self.start_block = start_block if start_block is not None else settings.start_block
        self._stop = threading.Event()
        self.last_poll_ok: float | None = None
        self.reorgs_seen = 0  # reorgs handled since start, for /metrics
        self.log = log.bind(chain_id=chain_id, coordinator=self.address)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()

    def run(self) -> None:
        """Poll until :meth:`stop`; transient RPC errors are logged and retried. A halted
        listener stays idle (health reports it) until an operator clears the cursor."""
        while not self._stop.is_set():
            try:
                result = self.poll_once()
                if not result.halted:
                    self.last_poll_ok = time.time()
                caught_up = result.halted or result.to_block is None or not result.new_rows
            except ReorgTooDeepError as exc:
                self.log.error("listener.halted", reason=str(exc))
                caught_up = True
            except Exception as exc:
                self.log.warning("listener.poll_failed", error=type(exc).__name__, detail=str(exc))
                caught_up = True
            if caught_up:
                self._stop.wait(self.settings.poll_interval_s)

    def stop(self) -> None:
        self._stop.set()

    # -- one poll --------------------------------------------------------------------
    def poll_once(self) -> PollResult:
        head = self.w3.eth.block_number
        safe = head - self.settings.confirmations
        if safe < 0:
            return PollResult([], None)
        cursor = self._cursor(safe)
        if cursor.halted_reason:
            return PollResult([], None, halted=True)
        from_block = cursor.block_number + 1
        if from_block > safe:
            return PollResult([], None)
        to_block = min(safe, from_block + self.settings.log_range - 1)
        first = self._header(from_block)
        if first.parent_hash != cursor.block_hash:
            fork = self._handle_reorg(from_block - 1)
            return PollResult([], None, reorg_from=fork + 1)
        last = first if to_block == from_block else self._header(to_block)
        events = self.coordinator.requested_logs(from_block, to_block)
        # A reorg during getLogs would leave logs from another fork: re-check the end.
        if self._header(to_block).hash != last.hash:
            return PollResult([], None)
        if any(ev.block_number == to_block and ev.block_hash != last.hash for ev in events):
            return PollResult([], None)
        if events and self.mirror is not None:
            self.mirror({ev.model_id for ev in events})
        new_rows = self.store.commit_range(
            events, last, forget_below=last.number - 2 * self.settings.finality_depth
        )
        if events:
            self.log.info(
                "listener.logs",
                from_block=from_block,
                to_block=to_block,
                requests=len(events),
                new=len(new_rows),
            )
        self.dispatch(new_rows)
        return PollResult(new_rows, to_block)

    # -- helpers ---------------------------------------------------------------------
    def _cursor(self, safe: int) -> Cursor:
        cursor = self.store.cursor()
        if cursor is not None:
            return cursor
        start = self.start_block if self.start_block is not None else safe
        header = self._header(max(start - 1, 0))
        # Block 0 has no parent: starting at 0 means the cursor sits "before" genesis.
        if start == 0:
            header = Header(-1, header.parent_hash, header.parent_hash)
        self.log.info("listener.cursor_created", start_block=start)
        return self.store.create_cursor(header.number, header.hash)

    def _header(self, number: int) -> Header:
        block: Any = self.w3.eth.get_block(number)
        if block is None:
            raise ChainError(f"block {number} not found")
        return Header(
            int(block["number"]),
            "0x" + bytes(block["hash"]).hex(),
            "0x" + bytes(block["parentHash"]).hex(),
        )

    def _handle_reorg(self, cursor_number: int) -> int:
        """Find the fork point, mark what the orphaned blocks announced, rewind."""
        depth_limit = self.settings.finality_depth
        records = self.store.remembered_blocks(cursor_number - depth_limit, cursor_number)
        fork: int | None = None
        for number in sorted(records, reverse=True):
            if self._header(number).hash == records[number]:
                fork = number
                break
        if fork is None:
            reason = (
                f"reorg at block {cursor_number} reaches below every block remembered within "
                f"the finality depth ({depth_limit}); refusing to guess"
            )
            self.store.halt(reason)
            raise ReorgTooDeepError(reason)
        marked = self.store.rewind(fork, self._header(fork).hash)
        self.reorgs_seen += 1
        self.log.warning("listener.reorg", fork_block=fork, cursor=cursor_number, reorged=marked)
        return fork
