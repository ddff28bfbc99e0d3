"""The listener: Coordinator logs in, request rows out.

Each poll reads ``eth_getLogs`` over a bounded range that ends ``confirmations`` blocks
below the head, checks that the range's first block builds on the block the cursor last
saw (parent hash), inserts one row per request (unique on chain id + coordinator +
request id), and moves the cursor, all in one database transaction. Rows are handed to
the inference queue after that commit; rows left ``seen`` by a crash are handed over again
by :meth:`Listener.dispatch_pending`, and the worker's conditional claim makes that safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from web3 import Web3

from oracle.chain.client import CoordinatorClient, RequestedEvent
from oracle.db import BlockRecord, ChainCursor, Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
from oracle.errors import ChainError, ReorgTooDeepError
from oracle.models.store import ArtifactStore
from oracle.settings import ChainSettings
from oracle.types import RequestStatus

log = structlog.get_logger(__name__)

Dispatch = Callable[[int], None]

# A reorg that removes a request's block marks its row ``reorged`` whatever its state: a
# fulfilment sent for it cannot land (the commitment holds the request's block), and one
# that landed was in a later block, so the reorg removed it too (the relayer re-opens its
# own transaction). If the request comes back in another block the row is reopened and
# answered anew.


@dataclass(frozen=True)
class Header:
    number: int
    hash: str
    parent_hash: str


@dataclass
class PollResult:
    new_rows: list[int]
    to_block: int | None
    reorg_from: int | None = None


class Listener:
    """Reads one Coordinator on one chain into the database."""

    def __init__(
        self,
        settings: ChainSettings,
        db: Database,
        coordinator: CoordinatorClient,
        chain_id: int,
        dispatch: Dispatch,
        store: ArtifactStore,
        start_block: int | None = None,
        dispatch_proof: Dispatch | None = None,
        proof_timeout_s: float = 600.0,
        requeue_after_s: float = 300.0,
    ) -> None:
        self.settings = settings
        self.db = db
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.chain_id = chain_id
        self.address = coordinator.address
        self.dispatch = dispatch
        self.dispatch_proof = dispatch_proof
        self.proof_timeout_s = proof_timeout_s
        self.requeue_after_s = requeue_after_s
        self.store = store
        self.start_block = start_block if start_block is not None else settings.start_block
        self._stop = threading.Event()
        self.last_poll_ok: float | None = None
        self.halted: str | None = None
        self.log = log.bind(chain_id=chain_id, coordinator=self.address)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        with self.db.session() as s:
            cursor = s.get(ChainCursor, (self.chain_id, self.address))
            if cursor is not None and cursor.halted_reason:
                self.halted = cursor.halted_reason
        self.dispatch_pending(older_than_s=0)

    def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Poll until :meth:`stop`; transient RPC errors are logged and retried."""
        import time

        while not self._stop.is_set():
            if self.halted:
                self._stop.wait(self.settings.poll_interval_s * 4)
                continue
            try:
                result = self.poll_once()
                self.last_poll_ok = time.time()
                if on_tick is not None:
                    on_tick()
                caught_up = result.to_block is None or not result.new_rows
                self.dispatch_pending(older_than_s=30)
            except ReorgTooDeepError as exc:
                self.halted = str(exc)
                self.log.error("listener.halted", reason=str(exc))
                continue
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
        with self.db.session() as s:
            cursor = self._cursor(s, safe)
            from_block = cursor.block_number + 1
            cursor_hash = cursor.block_hash
        if from_block > safe:
            return PollResult([], None)
        to_block = min(safe, from_block + self.settings.log_range - 1)
        first = self._header(from_block)
        if first.parent_hash != cursor_hash:
            fork = self._handle_reorg(from_block - 1)
            return PollResult([], None, reorg_from=fork + 1)
        last = first if to_block == from_block else self._header(to_block)
        events = self.coordinator.requested_logs(from_block, to_block)
        # A reorg during getLogs would leave logs from another fork: re-check the end.
        if self._header(to_block).hash != last.hash:
            return PollResult([], None)
        for ev in events:
            if ev.block_number == to_block and ev.block_hash != last.hash:
                return PollResult([], None)
        new_rows: list[int] = []
        with self.db.session() as s:
            for ev in events:
                row_id = self._insert(s, ev)
                if row_id is not None:
                    new_rows.append(row_id)
            self._mirror_models(s, {ev.model_id for ev in events})
            s.merge(
                BlockRecord(
                    chain_id=self.chain_id,
                    coordinator=self.address,
                    number=last.number,
                    hash=last.hash,
                    parent_hash=last.parent_hash,
                )
            )
            s.execute(
                delete(BlockRecord).where(
                    BlockRecord.chain_id == self.chain_id,
                    BlockRecord.coordinator == self.address,
                    BlockRecord.number < last.number - 2 * self.settings.finality_depth,
                )
            )
            cur = s.get(ChainCursor, (self.chain_id, self.address))
            if cur is None:
                raise ChainError("listener cursor vanished during a poll")
            cur.block_number = last.number
            cur.block_hash = last.hash
            cur.updated_at = utcnow()
        if events:
            self.log.info(
                "listener.logs",
                from_block=from_block,
                to_block=to_block,
                requests=len(events),
                new=len(new_rows),
            )
        for row_id in new_rows:
            self._dispatch(row_id)
        return PollResult(new_rows, to_block)

    def dispatch_pending(self, older_than_s: float) -> int:
        """Hand over rows a crash left ``seen`` (and ``queued`` ones that went stale)."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.db.session() as s:
            ids = list(
                s.scalars(
                    select(InferenceRequest.id).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.address,
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
        for row_id in ids:
            self._dispatch(row_id)
        return len(ids) + self._redispatch_stale_proofs()

    def _redispatch_stale_proofs(self) -> int:
        """Hand out again proof jobs whose prover went quiet (killed, broker lost the job)."""
        if self.dispatch_proof is None:
            return 0
        cutoff = utcnow() - timedelta(seconds=self.proof_timeout_s)
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(InferenceRequest).where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.address,
                        InferenceRequest.status == RequestStatus.PROVING.value,
                        func.coalesce(InferenceRequest.proving_at, InferenceRequest.inferred_at)
                        <= cutoff,
                    )
                )
            )
            for row in rows:
                row.proving_at = utcnow()
            ids = [row.id for row in rows]
        for row_id in ids:
            self.log.warning("listener.proof_redispatched", request_pk=row_id)
            self.dispatch_proof(row_id)
        return len(ids)

    # -- helpers ---------------------------------------------------------------------
    def _dispatch(self, row_id: int) -> None:
        self.dispatch(row_id)
        with self.db.session() as s:
            s.execute(
                update(InferenceRequest)
                .where(
                    InferenceRequest.id == row_id,
                    InferenceRequest.status.in_(
                        (RequestStatus.SEEN.value, RequestStatus.QUEUED.value)
                    ),
                )
                .values(status=RequestStatus.QUEUED.value, queued_at=utcnow())
            )

    def _cursor(self, s: Session, safe: int) -> ChainCursor:
        cursor = s.get(ChainCursor, (self.chain_id, self.address))
        if cursor is not None:
            return cursor
        start = self.start_block if self.start_block is not None else safe
        anchor = max(start - 1, 0)
        header = self._header(anchor)
        # Block 0 has no parent: starting at 0 means the cursor sits "before" genesis.
        if start == 0:
            header = Header(-1, header.parent_hash, header.parent_hash)
        cursor = ChainCursor(
            chain_id=self.chain_id,
            coordinator=self.address,
            block_number=header.number,
            block_hash=header.hash,
        )
        s.add(cursor)
        s.flush()
        self.log.info("listener.cursor_created", start_block=start)
        return cursor

    def _header(self, number: int) -> Header:
        block: Any = self.w3.eth.get_block(number)
        if block is None:
            raise ChainError(f"block {number} not found")
        return Header(
            int(block["number"]),
            "0x" + bytes(block["hash"]).hex(),
            "0x" + bytes(block["parentHash"]).hex(),
        )

    def _insert(self, s: Session, ev: RequestedEvent) -> int | None:
        existing = s.scalars(
            select(InferenceRequest).where(
                InferenceRequest.chain_id == self.chain_id,
                InferenceRequest.coordinator == self.address,
                InferenceRequest.request_id == ev.request_id,
            )
        ).first()
        if existing is not None:
            if existing.status == RequestStatus.REORGED.value:
                # The request came back in another block: same id, new commitment.
                self._apply_event(existing, ev)
                existing.status = RequestStatus.SEEN.value
                existing.output = None
                existing.error = None
                existing.attempts = 0
                existing.reference_output = None
                existing.proof = None
                existing.proof_attempts = 0
                existing.circuit_deviation = None
                existing.fulfil_tx_id = None
                existing.callback_succeeded = None
                existing.seen_at = utcnow()
                s.flush()
                return existing.id
            return None
        row = InferenceRequest(
            chain_id=self.chain_id,
            coordinator=self.address,
            request_id=ev.request_id,
            status=RequestStatus.SEEN.value,
            attempts=0,
        )
        self._apply_event(row, ev)
        s.add(row)
        s.flush()
        return row.id

    @staticmethod
    def _apply_event(row: InferenceRequest, ev: RequestedEvent) -> None:
        row.model_id = ev.model_id
        row.consumer = ev.consumer
        row.input = [str(v) for v in ev.input]
        row.mode = int(ev.mode)
        row.callback_gas_limit = ev.callback_gas_limit
        row.fee = str(ev.fee)
        row.block_number = ev.block_number
        row.block_hash = ev.block_hash
        row.tx_hash = ev.tx_hash
        row.log_index = ev.log_index

    def _mirror_models(self, s: Session, model_ids: set[str]) -> None:
        """Copy on-chain registry records the node has not seen; the chain is the truth."""
        for model_id in model_ids:
            if s.get(ModelRecord, model_id) is not None:
                continue
            info = self.coordinator.model(model_id)
            if not info["exists"]:
                continue
            s.add(
                ModelRecord(
                    model_id=model_id,
                    artifact_path=str(self.store.path_for(model_id)),
                    input_length=int(info["input_length"]),
                    output_length=int(info["output_length"]),
                    input_scale=int(info["input_scale"]),
                    output_scale=int(info["output_scale"]),
                    verifier=None if int(info["verifier"], 16) == 0 else info["verifier"],
                    owner=info["owner"],
                )
            )
            s.flush()

    def _handle_reorg(self, cursor_number: int) -> int:
        """Find the fork point, reopen what the orphaned blocks announced, rewind."""
        depth_limit = self.settings.finality_depth
        with self.db.session() as s:
            records = {
                r.number: r.hash
                for r in s.scalars(
                    select(BlockRecord).where(
                        BlockRecord.chain_id == self.chain_id,
                        BlockRecord.coordinator == self.address,
                        BlockRecord.number <= cursor_number,
                        BlockRecord.number > cursor_number - depth_limit,
                    )
                )
            }
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
            self._halt(reason)
            raise ReorgTooDeepError(reason)
        fork_hash = self._header(fork).hash
        with self.db.session() as s:
            reopened = s.execute(
                update(InferenceRequest)
                .where(
                    InferenceRequest.chain_id == self.chain_id,
                    InferenceRequest.coordinator == self.address,
                    InferenceRequest.block_number > fork,
                    InferenceRequest.status != RequestStatus.REORGED.value,
                )
                .values(status=RequestStatus.REORGED.value)
            ).rowcount  # type: ignore[attr-defined]
            s.execute(
                delete(BlockRecord).where(
                    BlockRecord.chain_id == self.chain_id,
                    BlockRecord.coordinator == self.address,
                    BlockRecord.number > fork,
                )
            )
            cur = s.get(ChainCursor, (self.chain_id, self.address))
            if cur is not None:
                cur.block_number = fork
                cur.block_hash = fork_hash
                cur.updated_at = utcnow()
        self.log.warning("listener.reorg", fork_block=fork, cursor=cursor_number, reopened=reopened)
        return fork

    def _halt(self, reason: str) -> None:
        with self.db.session() as s:
            cur = s.get(ChainCursor, (self.chain_id, self.address))
            if cur is not None:
                cur.halted_reason = reason
