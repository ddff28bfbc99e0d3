"""The resender: transactions that have no receipt yet.

What it guarantees: the next nonce to mine, still unmined ``bump_after_blocks`` after it
was broadcast, is replaced by the same call at a higher fee (same nonce, so at most one of
them lands); a transaction no node seems to know after ``rebroadcast_after_s`` is sent
again with the same bytes; a transaction whose nonce another transaction used is marked
dropped and its request made ready again; and a nonce below our highest live transaction
that nothing of ours will use is filled with a 0-value transfer to ourselves, so the
nonces behind it can be mined.

It leaves receipts, confirmation and reorgs to the confirmer, and the first send of a
request, and re-sending never-broadcast transactions, to the broadcaster.
"""

from __future__ import annotations

import structlog

from oracle.chain.client import CoordinatorClient
from oracle.db import Transaction
from oracle.db.models import utcnow
from oracle.relayer.attempts import FILLER_GAS, AttemptBuilder, Head, rows_call
from oracle.relayer.broadcaster import Broadcaster
from oracle.relayer.store import RelayerStore
from oracle.settings import Settings
from oracle.types import TxStatus

log = structlog.get_logger(__name__)

# A tx in one of these states will use its nonce (or already has).
_LIVE = (
    TxStatus.SIGNED.value,
    TxStatus.BROADCAST.value,
    TxStatus.MINED.value,
    TxStatus.CONFIRMED.value,
)


class Resender:
    """Bumps, re-sends, drops and gap-fills one signer's unmined transactions."""

    def __init__(
        self,
        settings: Settings,
        coordinator: CoordinatorClient,
        store: RelayerStore,
        attempts: AttemptBuilder,
        broadcaster: Broadcaster,
        sender: str,
    ) -> None:
        self.settings = settings
        self.coordinator = coordinator
        self.store = store
        self.attempts = attempts
        self.broadcaster = broadcaster
        self.sender = sender
        self.log = log.bind(signer=sender)

    def without_receipt(self, tx: Transaction, mined_nonce: int, head: Head) -> None:
        """A broadcast tx with no receipt and its nonce not yet used: bump it if it is the
        next to mine and stuck on its fee, else re-send it if no node seems to know it."""
        if tx.nonce == mined_nonce and self._underpriced(tx, head) and self.bump(tx, head):
            return  # the next nonce to mine, stuck on its fee: replaced, fee raised
        if self._forgotten(tx):
            # No node knows it (evicted, lost in a reorg): the same bytes again, so the
            # nonce is used and nothing is signed twice.
            self.log.warning("relayer.rebroadcast", tx_hash=tx.tx_hash, nonce=tx.nonce)
            self.broadcaster.broadcast(tx.tx_hash, tx.raw, head, self.log.bind(tx_id=tx.id))
            self.store.mark_resent(tx.id)

    def _underpriced(self, tx: Transaction, head: Head) -> bool:
        if tx.status != TxStatus.BROADCAST.value or tx.broadcast_block is None:
            return False
        return head.number - tx.broadcast_block >= self.settings.relayer.bump_after_blocks

    def _forgotten(self, tx: Transaction) -> bool:
        sent = tx.broadcast_at or tx.created_at
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=utcnow().tzinfo)
        return (utcnow() - sent).total_seconds() >= self.settings.relayer.rebroadcast_after_s

    def bump(self, tx: Transaction, head: Head) -> bool:
        """Re-sign the same nonce and the same call with higher fees (a replacement).

        False when the tx no longer answers a request (the request was reorged or re-sent):
        it then only holds its nonce, and the same bytes are re-broadcast."""
        rows = self.store.requests_answered_by(tx.id)
        if not rows:
            return False
        fees = self.attempts.replacement_fees(head, tx)
        value = int(tx.value or 0)
        signed = self.attempts.sign(
            nonce=tx.nonce,
            to=self.coordinator.address,
            gas_limit=tx.gas_limit,
            fees=fees,
            data=rows_call(self.coordinator, rows, value).data,
            value=value,
        )
        if not self.store.save_replacement(tx, rows, signed):
            return False  # the row or tx moved on meanwhile: keep the nonce's current bytes
        self.log.warning(
            "relayer.fee_bumped",
            old_tx=tx.tx_hash,
            tx_hash=signed.tx_hash,
            nonce=tx.nonce,
            max_fee=fees.max_fee,
            priority=fees.priority,
        )
        self.broadcaster.broadcast(
            signed.tx_hash, signed.raw, head, self.log.bind(request_pks=[r.id for r in rows])
        )
        return True

    def dropped(self, tx_id: int) -> None:
        """The nonce was consumed by another transaction: re-queue the request, resync."""
        self.store.mark_dropped(tx_id)
        self.broadcaster.forget_nonce()
        self.log.warning("relayer.tx_dropped", tx_id=tx_id)

    def fill_gaps(self, mined_nonce: int, head: Head) -> None:
        """Nonces below our highest live transaction that nothing of ours will ever use (its
        tx was judged dropped, or reverted then reorged out) hold back every later one: each
        gets a 0-value transfer to ourselves at current fees, so the queue moves again."""
        held = self.store.txs_holding_nonces_from(mined_nonce)
        live = [n for n, tx in held.items() if tx.status in _LIVE]
        if not live:
            return
        for nonce in range(mined_nonce, max(live)):
            if nonce not in live:
                self._send_filler(nonce, held.get(nonce), head)

    def _send_filler(self, nonce: int, stale: Transaction | None, head: Head) -> None:
        fees = (
            self.attempts.fees(head)
            if stale is None
            else self.attempts.replacement_fees(head, stale)
        )
        signed = self.attempts.sign(nonce=nonce, to=self.sender, gas_limit=FILLER_GAS, fees=fees)
        self.store.save_filler(signed, stale.id if stale is not None else None)
        self.log.warning("relayer.nonce_gap_filled", nonce=nonce, tx_hash=signed.tx_hash)
        self.broadcaster.broadcast(signed.tx_hash, signed.raw, head, self.log.bind(nonce=nonce))
