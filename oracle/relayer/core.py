"""The relayer: a durable transaction manager that posts fulfilments.

For each inferred (plain) or proved (Zk) request it checks the request is still pending on
chain, simulates ``fulfill`` with ``eth_call``, signs an EIP-1559 transaction with the nonce
it keeps in the database, saves the signed bytes, and only then broadcasts. A restart
re-sends the same bytes (same nonce, same hash) instead of signing anew. Receipts are
followed to the confirmation depth; a reverted fulfilment is re-checked against the chain,
never blindly repeated.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception, Web3RPCError

from oracle.chain.client import CoordinatorClient, RequestStruct, revert_from_exception
from oracle.db import Database, InferenceRequest, Transaction
from oracle.db.models import utcnow
from oracle.dev.crashpoints import crash_point
from oracle.errors import TransactionError
from oracle.relayer.wake import Notifier
from oracle.settings import Settings
from oracle.types import RequestStatus, TxStatus

log = structlog.get_logger(__name__)

MAX_ERR_BYTES = 256
MAX_REVERTED_ATTEMPTS = 3
_PENDING_TX = (TxStatus.SIGNED.value, TxStatus.BROADCAST.value, TxStatus.MINED.value)
# Simulation failures that mean "wait and try again" rather than "this request is done".
_TRANSIENT_REVERTS = {"NotActiveNode", "InsufficientGasForCallback"}
_ALREADY_SENT_HINTS = ("already known", "already imported", "known transaction")
_NONCE_USED_HINTS = ("nonce too low", "nonce has already been used")
# Rows ready to post: an output or error (plain), or an output with its proof (Zk).
_READY = (RequestStatus.INFERRED.value, RequestStatus.PROVED.value)


def _ready_status(row: InferenceRequest) -> str:
    """Where a row goes back to when its transaction did not land."""
    return RequestStatus.PROVED.value if row.proof else RequestStatus.INFERRED.value


def _same_row(s: Session, seen: InferenceRequest, **values: Any) -> bool:
    """Write ``values`` to the row only if it is still as ``seen`` (status, block, tx).

    The listener rewrites rows when a reorg removes their block; a write decided on an
    older read must not undo that, so every relayer write to a request row is this
    compare-and-set (one UPDATE, atomic on SQLite and PostgreSQL alike)."""
    tx_hash = InferenceRequest.fulfil_tx_hash
    result = s.execute(
        update(InferenceRequest)
        .where(
            InferenceRequest.id == seen.id,
            InferenceRequest.status == seen.status,
            InferenceRequest.block_hash == seen.block_hash,
            tx_hash.is_(None) if seen.fulfil_tx_hash is None else tx_hash == seen.fulfil_tx_hash,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


@dataclass
class RelayerHealth:
    last_tick_ok: float | None = None
    problem: str | None = None


class Relayer:
    """Sends fulfilments for one Coordinator from one signer."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        coordinator: CoordinatorClient,
        chain_id: int,
        account: LocalAccount,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.chain_id = chain_id
        self.account = account
        self.sender = Web3.to_checksum_address(account.address)
        self.notifier = notifier
        self.health = RelayerHealth()
        self._stop = threading.Event()
        self._nonce: int | None = None
        self._watched_head: Any = None
        self._final_below = -1  # confirmed txs mined at or below this block are final
        self.log = log.bind(chain_id=chain_id, signer=self.sender)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._nonce = self._initial_nonce()
        self.log.info("relayer.started", next_nonce=self._nonce)
        self._rebroadcast_signed()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                pending = self.tick()
                self.health.last_tick_ok = time.time()
            except Exception as exc:
                self.log.warning("relayer.tick_failed", error=type(exc).__name__, detail=str(exc))
                pending = True
                self._nonce = None  # re-read from chain and DB before the next send
            wait = (
                self.settings.relayer.receipt_poll_s
                if pending
                else self.settings.relayer.idle_wait_s
            )
            if self.notifier is not None:
                try:
                    self.notifier.wait(wait)
                    continue
                except Exception:
                    self.log.warning("relayer.wake_channel_down")
            self._stop.wait(wait)

    def stop(self) -> None:
        self._stop.set()

    # -- one round -------------------------------------------------------------------
    def tick(self) -> bool:
        """Follow pending transactions, then send ready results. True if work is in flight."""
        if self._nonce is None:
            self._nonce = self._initial_nonce()
        self._rebroadcast_signed()
        in_flight = self._track_pending()
        sent = self._send_ready()
        return in_flight or sent > 0

    def _initial_nonce(self) -> int:
        chain_nonce = self.w3.eth.get_transaction_count(self.sender, "pending")
        with self.db.session() as s:
            db_max = s.scalar(
                select(func.max(Transaction.nonce)).where(
                    Transaction.chain_id == self.chain_id, Transaction.sender == self.sender
                )
            )
        return max(chain_nonce, (db_max + 1) if db_max is not None else 0)

    # -- sending ---------------------------------------------------------------------
    def _send_ready(self) -> int:
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(InferenceRequest)
                    .where(
                        InferenceRequest.chain_id == self.chain_id,
                        InferenceRequest.coordinator == self.coordinator.address,
                        InferenceRequest.status.in_(_READY),
                    )
                    .order_by(InferenceRequest.id)
                    .limit(64)
                )
            )
        sent = 0
        for row in rows:
            if self._send(row):
                sent += 1
        return sent

    def _send(self, row: InferenceRequest) -> bool:
        rlog = self.log.bind(request_id=row.request_id, request_pk=row.id)
        if self.coordinator.commitment(row.request_id) == b"\x00" * 32:
            self._not_pending(row, rlog)
            return False
        data = self._calldata(row)
        call: dict[str, Any] = {"from": self.sender, "to": self.coordinator.address, "data": data}
        try:
            self.w3.eth.call(call, "latest")  # type: ignore[arg-type]
            gas = self.w3.eth.estimate_gas(call)  # type: ignore[arg-type]
        except (Web3Exception, ValueError) as exc:
            return self._simulation_failed(row, exc, rlog)
        gas_limit = int(gas * self.settings.relayer.gas_limit_multiplier)
        max_fee, priority = self._fees()
        nonce = self._nonce if self._nonce is not None else self._initial_nonce()
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": self.coordinator.address,
            "data": data,
            "value": 0,
            "gas": gas_limit,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority,
        }
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        tx_hash = "0x" + bytes(signed.hash).hex()
        with self.db.session() as s:
            s.add(
                Transaction(
                    chain_id=self.chain_id,
                    sender=self.sender,
                    nonce=nonce,
                    request_pk=row.id,
                    tx_hash=tx_hash,
                    raw=bytes(signed.raw_transaction),
                    status=TxStatus.SIGNED.value,
                    gas_limit=gas_limit,
                    max_fee_per_gas=str(max_fee),
                    max_priority_fee_per_gas=str(priority),
                )
            )
            submitted = _same_row(
                s,
                row,
                status=RequestStatus.SUBMITTED.value,
                fulfil_tx_hash=tx_hash,
                submitted_at=utcnow(),
            )
            if not submitted:  # rolls back the transaction row too: nothing was sent
                raise TransactionError(f"request row {row.id} changed while signing")
        self._nonce = nonce + 1
        crash_point("relayer.after_sign")
        self._broadcast(tx_hash, bytes(signed.raw_transaction), rlog)
        return True

    def _calldata(self, row: InferenceRequest) -> HexStr:
        """``fulfill`` call data for a row: a pure function of the row, so a replacement
        transaction carries exactly the same answer."""
        req = RequestStruct(
            request_id=row.request_id,
            model_id=row.model_id,
            consumer=row.consumer,
            mode=row.mode,
            callback_gas_limit=row.callback_gas_limit,
            requested_at_block=row.block_number,
            fee=int(row.fee),
            input=tuple(int(v) for v in row.input),
        )
        output = [int(v) for v in row.output] if row.output else []
        err = (row.error or "").encode()[:MAX_ERR_BYTES]
        return self.coordinator.fulfill_calldata(req, output, err, row.proof or b"")

    def _simulation_failed(self, row: InferenceRequest, exc: Exception, rlog: Any) -> bool:
        revert = revert_from_exception(exc)
        if revert is None:
            raise exc  # an RPC problem, not a verdict on the request: retry on the next tick
        if revert.name == "RequestNotPending":
            self._not_pending(row, rlog)
        elif revert.name in _TRANSIENT_REVERTS:
            self.health.problem = f"fulfil simulation reverted: {revert.name}"
            rlog.warning("relayer.simulation_transient", error=revert.name)
        else:
            self._close(row, RequestStatus.FAILED, f"fulfil simulation reverted: {revert.name}")
            rlog.error(
                "relayer.simulation_reverted", error=revert.name, args=str(revert.error_args)
            )
        return False

    def _fees(self) -> tuple[int, int]:
        latest: Any = self.w3.eth.get_block("latest")
        base = int(latest.get("baseFeePerGas", 0) or 0)
        if self.settings.relayer.priority_fee_gwei is not None:
            priority = int(self.settings.relayer.priority_fee_gwei * 10**9)
        else:
            priority = int(self.w3.eth.max_priority_fee)
        max_fee = int(base * self.settings.relayer.max_fee_multiplier) + priority
        return max_fee, priority

    def _replacement_fees(self, old: Transaction) -> tuple[int, int]:
        """Current fees, but at least ``bump_factor`` times what ``old`` offered: a node
        only accepts a replacement for a nonce that outbids the one it holds."""
        factor = self.settings.relayer.bump_factor
        max_fee, priority = self._fees()
        max_fee = max(max_fee, int(int(old.max_fee_per_gas) * factor) + 1)
        priority = max(priority, int(int(old.max_priority_fee_per_gas) * factor) + 1)
        return max_fee, priority

    def _broadcast(self, tx_hash: str, raw: bytes, rlog: Any) -> None:
        try:
            self.w3.eth.send_raw_transaction(HexBytes(raw))
        except (Web3RPCError, ValueError) as exc:
            message = str(exc).lower()
            if any(hint in message for hint in _NONCE_USED_HINTS):
                # Either this very tx was already mined, or another tx took the nonce;
                # receipt tracking tells which and re-queues the request if needed.
                rlog.warning("relayer.nonce_used", tx_hash=tx_hash)
            elif not any(hint in message for hint in _ALREADY_SENT_HINTS):
                rlog.warning("relayer.broadcast_failed", tx_hash=tx_hash, detail=str(exc)[:200])
                self.health.problem = f"broadcast failed: {str(exc)[:120]}"
                return
        crash_point("relayer.after_broadcast")
        with self.db.session() as s:
            tx = s.scalars(select(Transaction).where(Transaction.tx_hash == tx_hash)).one()
            if tx.status == TxStatus.SIGNED.value:
                tx.status = TxStatus.BROADCAST.value
                tx.broadcast_at = utcnow()
                tx.broadcast_block = int(self.w3.eth.block_number)
        self.health.problem = None
        rlog.info("relayer.broadcast", tx_hash=tx_hash)

    def _rebroadcast_signed(self) -> None:
        with self.db.session() as s:
            txs = list(
                s.scalars(
                    select(Transaction)
                    .where(
                        Transaction.chain_id == self.chain_id,
                        Transaction.sender == self.sender,
                        Transaction.status == TxStatus.SIGNED.value,
                    )
                    .order_by(Transaction.nonce)
                )
            )
        for tx in txs:
            self._broadcast(tx.tx_hash, tx.raw, self.log.bind(request_pk=tx.request_pk))

    # -- following receipts ------------------------------------------------------------
    def _track_pending(self) -> bool:
        self._watch_confirmed()
        with self.db.session() as s:
            txs = list(
                s.scalars(
                    select(Transaction).where(
                        Transaction.chain_id == self.chain_id,
                        Transaction.sender == self.sender,
                        Transaction.status.in_((TxStatus.BROADCAST.value, TxStatus.MINED.value)),
                    )
                )
            )
        if not txs:
            return False
        head = self.w3.eth.block_number
        # The nonce is read before the receipts: a tx mined between the two reads then shows
        # as a receipt, never as "no receipt but its nonce used" (which would mean dropped).
        mined_nonce = self.w3.eth.get_transaction_count(self.sender, "latest")
        self._fill_gaps(mined_nonce)
        for tx in txs:
            receipt: Any = self._receipt(tx)
            if receipt is None:
                if mined_nonce > tx.nonce:
                    self._dropped(tx.id)  # another tx used the nonce: this one never lands
                elif tx.status == TxStatus.MINED.value:
                    self._unmined(tx.id)  # reorged out: send the same bytes again
                elif tx.nonce == mined_nonce and self._underpriced(tx, head) and self._bump(tx):
                    pass  # the next nonce to mine, stuck on its fee: replaced, fee raised
                elif self._forgotten(tx):
                    # No node knows it (evicted, lost in a reorg): the same bytes again, so
                    # the nonce is used and nothing is signed twice.
                    self.log.warning("relayer.rebroadcast", tx_hash=tx.tx_hash, nonce=tx.nonce)
                    self._broadcast(tx.tx_hash, tx.raw, self.log.bind(request_pk=tx.request_pk))
                    self._touch(tx.id)
                continue
            crash_point("relayer.after_receipt")
            mined = int(receipt["blockNumber"])
            if head - mined < self.settings.chain.confirmations:
                self._mark_mined(tx.id, mined, int(receipt["status"]))
                continue
            self._settle(tx.id, receipt)
        return True

    def _fill_gaps(self, mined_nonce: int) -> None:
        """Nonces below our highest live transaction that nothing of ours will ever use (its
        tx was judged dropped, or reverted then reorged out) hold back every later one: each
        gets a 0-value transfer to ourselves at current fees, so the queue moves again."""
        with self.db.session() as s:
            held = {
                tx.nonce: tx
                for tx in s.scalars(
                    select(Transaction).where(
                        Transaction.chain_id == self.chain_id,
                        Transaction.sender == self.sender,
                        Transaction.nonce >= mined_nonce,
                    )
                )
            }
            for tx in held.values():
                s.expunge(tx)
        live = [
            n for n, tx in held.items() if tx.status in (*_PENDING_TX, TxStatus.CONFIRMED.value)
        ]
        if not live:
            return
        for nonce in range(mined_nonce, max(live)):
            if nonce not in live:
                self._send_filler(nonce, held.get(nonce))

    def _send_filler(self, nonce: int, stale: Transaction | None) -> None:
        max_fee, priority = self._fees() if stale is None else self._replacement_fees(stale)
        signed = self.account.sign_transaction(
            {  # type: ignore[arg-type]
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": self.sender,
                "value": 0,
                "gas": 21_000,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority,
            }
        )
        tx_hash = "0x" + bytes(signed.hash).hex()
        with self.db.session() as s:
            tx = s.get(Transaction, stale.id) if stale is not None else None
            if tx is None:
                tx = Transaction(chain_id=self.chain_id, sender=self.sender, nonce=nonce)
                s.add(tx)
            else:  # the old bytes stay known: if they land after all, that is fine too
                tx.replaced_hashes = [*(tx.replaced_hashes or []), tx.tx_hash]
                tx.error = f"nonce gap filled; was for request row {tx.request_pk}"
                tx.request_pk = None
            tx.tx_hash = tx_hash
            tx.raw = bytes(signed.raw_transaction)
            tx.status = TxStatus.SIGNED.value
            tx.gas_limit = 21_000
            tx.max_fee_per_gas = str(max_fee)
            tx.max_priority_fee_per_gas = str(priority)
            tx.mined_block = None
            tx.receipt_status = None
        self.log.warning("relayer.nonce_gap_filled", nonce=nonce, tx_hash=tx_hash)
        self._broadcast(tx_hash, bytes(signed.raw_transaction), self.log.bind(nonce=nonce))

    def _watch_confirmed(self) -> None:
        """A confirmed fulfilment can still be reorged out until it is final: if its
        receipt vanishes, the same bytes go out again and the request is open again."""
        with self.db.session() as s:
            txs = list(
                s.scalars(
                    select(Transaction).where(
                        Transaction.chain_id == self.chain_id,
                        Transaction.sender == self.sender,
                        Transaction.status == TxStatus.CONFIRMED.value,
                        Transaction.mined_block > self._final_below,
                    )
                )
            )
        if not txs:
            return  # nothing young enough to be reorged out: no RPC on an idle tick
        latest: Any = self.w3.eth.get_block("latest")
        if latest["hash"] == self._watched_head:
            return  # nothing can have changed without a new head block
        self._watched_head = latest["hash"]
        self._final_below = int(latest["number"]) - self.settings.chain.finality_depth
        txs = [
            tx for tx in txs if tx.mined_block is not None and tx.mined_block > self._final_below
        ]
        if not txs:
            return
        mined_nonce = self.w3.eth.get_transaction_count(self.sender, "latest")  # before receipts
        for tx in txs:
            receipt = self._receipt(tx)
            if receipt is not None:
                if int(receipt["blockNumber"]) != tx.mined_block:
                    self._mark_confirmed_block(tx.id, int(receipt["blockNumber"]))
                continue
            if mined_nonce > tx.nonce:
                continue  # the nonce is used on this fork too; the listener sees the request
            self._unmined(tx.id)

    def _mark_confirmed_block(self, tx_id: int, block: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return
            tx.mined_block = block
            row = s.get(InferenceRequest, tx.request_pk) if tx.request_pk is not None else None
            if row is not None and row.fulfil_tx_hash == tx.tx_hash:
                _same_row(s, row, fulfilled_block=block)

    def _receipt(self, tx: Transaction) -> Any:
        """The receipt of this nonce's transaction: the current one or one it replaced."""
        for tx_hash in [tx.tx_hash, *(tx.replaced_hashes or [])]:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                continue
        return None

    def _underpriced(self, tx: Transaction, head: int) -> bool:
        if tx.status != TxStatus.BROADCAST.value or tx.broadcast_block is None:
            return False
        return head - tx.broadcast_block >= self.settings.relayer.bump_after_blocks

    def _bump(self, tx: Transaction) -> bool:
        """Re-sign the same nonce and the same call with higher fees (a replacement).

        False when the tx no longer speaks for its request (the request was reorged or
        re-sent): it then only holds its nonce, and the same bytes are re-broadcast."""
        with self.db.session() as s:
            row = s.get(InferenceRequest, tx.request_pk) if tx.request_pk is not None else None
            if row is None or row.fulfil_tx_hash != tx.tx_hash:
                return False
            s.expunge(row)
        max_fee, priority = self._replacement_fees(tx)
        signed = self.account.sign_transaction(
            {  # type: ignore[arg-type]
                "type": 2,
                "chainId": self.chain_id,
                "nonce": tx.nonce,
                "to": self.coordinator.address,
                "data": self._calldata(row),
                "value": 0,
                "gas": tx.gas_limit,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": priority,
            }
        )
        new_hash = "0x" + bytes(signed.hash).hex()
        with self.db.session() as s:
            stored = s.get(Transaction, tx.id)
            if stored is None or stored.tx_hash != tx.tx_hash:
                return False
            if not _same_row(s, row, fulfil_tx_hash=new_hash):
                return False  # the row moved on meanwhile: keep the nonce's current bytes
            stored.replaced_hashes = [*(stored.replaced_hashes or []), stored.tx_hash]
            stored.tx_hash = new_hash
            stored.raw = bytes(signed.raw_transaction)
            stored.max_fee_per_gas = str(max_fee)
            stored.max_priority_fee_per_gas = str(priority)
            stored.status = TxStatus.SIGNED.value
        self.log.warning(
            "relayer.fee_bumped",
            old_tx=tx.tx_hash,
            tx_hash=new_hash,
            nonce=tx.nonce,
            max_fee=max_fee,
            priority=priority,
        )
        self._broadcast(new_hash, bytes(signed.raw_transaction), self.log.bind(request_pk=row.id))
        return True

    def _forgotten(self, tx: Transaction) -> bool:
        sent = tx.broadcast_at or tx.created_at
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=utcnow().tzinfo)
        return (utcnow() - sent).total_seconds() >= self.settings.relayer.rebroadcast_after_s

    def _touch(self, tx_id: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is not None:
                tx.broadcast_at = utcnow()

    def _mark_mined(self, tx_id: int, block: int, status: int) -> None:
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is not None:
                tx.status = TxStatus.MINED.value
                tx.mined_block = block
                tx.receipt_status = status

    def _unmined(self, tx_id: int) -> None:
        """A reorg took our mined tx out: the same bytes go again. If it had already been
        taken as confirmed, its request is open again until they land."""
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return
            was = tx.status
            tx.status = TxStatus.SIGNED.value
            tx.mined_block = None
            tx.receipt_status = None
            row = s.get(InferenceRequest, tx.request_pk) if tx.request_pk is not None else None
            if (
                row is not None
                and row.fulfil_tx_hash == tx.tx_hash
                and row.status in (RequestStatus.CONFIRMED.value, RequestStatus.FAILED.value)
            ):
                _same_row(
                    s,
                    row,
                    status=RequestStatus.SUBMITTED.value,
                    fulfilled_block=None,
                    confirmed_at=None,
                )
        self.log.warning("relayer.tx_unmined", tx_id=tx_id, was=was)

    def _dropped(self, tx_id: int) -> None:
        """The nonce was consumed by another transaction: re-queue the request, resync."""
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return
            tx.status = TxStatus.DROPPED.value
            row = s.get(InferenceRequest, tx.request_pk) if tx.request_pk is not None else None
            if (
                row is not None
                and row.status == RequestStatus.SUBMITTED.value
                and row.fulfil_tx_hash == tx.tx_hash
            ):
                _same_row(s, row, status=_ready_status(row))  # re-checked against the chain
        self._nonce = None
        self.log.warning("relayer.tx_dropped", tx_id=tx_id)

    def _settle(self, tx_id: int, receipt: Any) -> None:
        status = int(receipt["status"])
        block = int(receipt["blockNumber"])
        events = self.coordinator.fulfilled_in_receipt(receipt) if status == 1 else []
        with self.db.session() as s:
            tx = s.get(Transaction, tx_id)
            if tx is None:
                return
            tx.mined_block = block
            tx.receipt_status = status
            tx.status = TxStatus.CONFIRMED.value if status == 1 else TxStatus.REVERTED.value
            row = s.get(InferenceRequest, tx.request_pk) if tx.request_pk is not None else None
            if (
                row is None
                or row.status != RequestStatus.SUBMITTED.value
                or row.fulfil_tx_hash != tx.tx_hash
            ):
                return  # the row moved on (reorged away, re-sent): this tx no longer speaks for it
            rlog = self.log.bind(request_id=row.request_id, tx_hash=tx.tx_hash, block=block)
            if status == 1:
                callback_succeeded = bool(events[0]["callbackSucceeded"]) if events else None
                if _same_row(
                    s,
                    row,
                    callback_succeeded=callback_succeeded,
                    fulfilled_block=block,
                    confirmed_at=utcnow(),
                    status=RequestStatus.FAILED.value
                    if row.error
                    else RequestStatus.CONFIRMED.value,
                ):
                    rlog.info("relayer.confirmed", callback_succeeded=callback_succeeded)
                return
            reverted = (
                s.scalar(
                    select(func.count(Transaction.id)).where(
                        Transaction.request_pk == row.id,
                        Transaction.status == TxStatus.REVERTED.value,
                    )
                )
                or 0
            )
            if reverted >= MAX_REVERTED_ATTEMPTS:
                error = (row.error or "") + " | fulfilment reverted on chain"
                _same_row(s, row, status=RequestStatus.FAILED.value, error=error)
            else:
                _same_row(s, row, status=_ready_status(row))  # re-checked against the chain
            rlog.warning("relayer.reverted", reverted=reverted)

    def _not_pending(self, row: InferenceRequest, rlog: Any) -> None:
        """The chain holds no commitment for a request the node still means to answer: it
        was answered (perhaps by a transaction of ours the node had given up on, mined after
        all) or cancelled. Record what the chain says, not a guess."""
        seen = self.coordinator.fulfilment_of(row.request_id, row.block_number)
        if seen is None:
            self._close(row, RequestStatus.CANCELLED, "not pending on chain: cancelled")
            rlog.info("relayer.skip_cancelled")
            return
        if seen["node"] != self.sender:
            self._close(
                row, RequestStatus.CANCELLED, f"not pending on chain: answered by {seen['node']}"
            )
            rlog.info("relayer.skip_answered_elsewhere", node=seen["node"])
            return
        with self.db.session() as s:
            ours = [
                tx
                for tx in s.scalars(select(Transaction).where(Transaction.request_pk == row.id))
                if seen["tx_hash"] in (tx.tx_hash, *(tx.replaced_hashes or []))
            ]
            for tx in ours:  # it landed after all: the nonce's record says so again
                tx.status = TxStatus.CONFIRMED.value
                tx.mined_block = seen["block"]
                tx.receipt_status = 1
            done = _same_row(
                s,
                row,
                status=RequestStatus.FAILED.value if row.error else RequestStatus.CONFIRMED.value,
                fulfil_tx_hash=seen["tx_hash"],
                fulfilled_block=seen["block"],
                callback_succeeded=seen["callback_succeeded"],
                confirmed_at=utcnow(),
            )
        if done:
            rlog.warning(
                "relayer.found_own_fulfilment", tx_hash=seen["tx_hash"], block=seen["block"]
            )

    def _close(self, row: InferenceRequest, status: RequestStatus, reason: str) -> None:
        error = row.error
        if status is RequestStatus.FAILED or error is None:
            error = reason if error is None else f"{error} | {reason}"
        with self.db.session() as s:
            if not _same_row(s, row, status=status.value, error=error):
                self.log.info("relayer.row_changed", request_pk=row.id, wanted=status.value)
