"""The relayer: a durable transaction manager that posts fulfilments to the Coordinator.

For each inferred (plain) or proved (Zk) request it checks the request is still pending on
chain, simulates ``fulfill``, signs an EIP-1559 transaction with the nonce it keeps in the
database, saves the signed bytes, and only then broadcasts. A restart re-sends the same
bytes (same nonce, same hash) instead of signing anew. Receipts are followed to the
confirmation depth; a reverted fulfilment is re-checked against the chain, never blindly
repeated.

This module only wires the parts together and runs the loop: each round reads the head
block once and hands it to them.

- :mod:`~oracle.relayer.attempts`: call data, fees, signing.
- :mod:`~oracle.relayer.store`: every database query and write.
- :mod:`~oracle.relayer.broadcaster`: nonces, simulation, save-then-send.
- :mod:`~oracle.relayer.confirmer`: receipts, confirmations, reorgs, settling.
- :mod:`~oracle.relayer.resender`: fee bumps, re-sends, dropped txs, nonce gaps.
- :mod:`~oracle.relayer.claims`: challenges against our posted optimistic answers.
"""

from __future__ import annotations

import threading
import time

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracle.chain.client import CoordinatorClient
from oracle.db import Database
from oracle.relayer.attempts import AttemptBuilder, Head
from oracle.relayer.broadcaster import Broadcaster, RelayerHealth
from oracle.relayer.claims import ClaimKeeper
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.resender import Resender
from oracle.relayer.sql_store import SqlRelayerStore
from oracle.relayer.store import RelayerStore
from oracle.relayer.wake import Notifier
from oracle.settings import Settings
from oracle.types import TxStatus

log = structlog.get_logger(__name__)

FOLLOW_EVERY_S = 1.0  # receipts are read on each new head, and at least this often


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
        store: RelayerStore | None = None,
    ) -> None:
        self.db = db
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.chain_id = chain_id
        self.sender = Web3.to_checksum_address(account.address)
        self.notifier = notifier
        self.health = RelayerHealth()
        self.store: RelayerStore = store or SqlRelayerStore(
            db, chain_id, coordinator.address, self.sender
        )
        self.attempts = AttemptBuilder(settings, self.w3, account, chain_id)
        self.confirmer = Confirmer(settings, coordinator, self.store, self.sender)
        self.broadcaster = Broadcaster(
            settings,
            coordinator,
            self.store,
            self.attempts,
            self.confirmer,
            self.sender,
            self.health,
        )
        self.resender = Resender(
            settings, coordinator, self.store, self.attempts, self.broadcaster, self.sender
        )
        self.claims = ClaimKeeper(coordinator, self.store, self.sender)
        self.settings = settings
        self._stop = threading.Event()
        self._followed: tuple[bytes | None, float] = (None, 0.0)  # (head hash, monotonic s)
        self.log = log.bind(chain_id=chain_id, signer=self.sender)

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        """New settings take effect on the next round, in every part."""
        self._settings = value
        for part in (self.attempts, self.confirmer, self.broadcaster, self.resender):
            part.settings = value

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self.broadcaster.forget_nonce()
        self.log.info("relayer.started", next_nonce=self.broadcaster.sync_nonce())
        self.broadcaster.rebroadcast_saved(Head(self.w3))

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                pending = self.tick()
                self.health.tick_ok()
            except Exception as exc:
                self.log.warning("relayer.tick_failed", error=type(exc).__name__, detail=str(exc))
                pending = True
                self.broadcaster.forget_nonce()  # re-read from chain and DB before a send
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
        """Send ready results, then follow pending transactions. True if work is in flight.

        Sending comes first so a result a worker just woke us for is not held up by receipt
        reads for earlier transactions (a tick with many in flight reads one receipt each);
        challenges to our posted answers are read before, so a challenged answer is never
        sent to be finalised."""
        head = Head(self.w3)
        self.broadcaster.sync_nonce()
        self.broadcaster.rebroadcast_saved(head)
        watching = self.claims.check(head) > 0
        sent = self.broadcaster.send_ready(head)
        in_flight, followed = self._follow(head)
        if followed:  # a dropped or reverted tx may have put its rows back: they go now
            sent += self.broadcaster.send_ready(head)
        return in_flight or watching or sent > 0

    def _follow(self, head: Head) -> tuple[bool, bool]:
        """Receipts of our pending transactions: (any in flight, receipts were read)."""
        self.confirmer.watch_confirmed(head)
        txs = self.store.txs_awaiting_receipt()
        if not txs:
            return False, False
        # Receipts, drops and bumps only change with a new block: a round a worker woke us
        # for in the same block sends and leaves (at least once a second all the same, for
        # what is timed rather than mined: a transaction no node seems to know).
        now = time.monotonic()
        if head.hash == self._followed[0] and now - self._followed[1] < FOLLOW_EVERY_S:
            return True, False
        self._followed = (head.hash, now)
        # The nonce is read before the receipts: a tx mined between the two reads then shows
        # as a receipt, never as "no receipt but its nonce used" (which would mean dropped).
        mined_nonce = self.w3.eth.get_transaction_count(self.sender, "latest")
        self.resender.fill_gaps(mined_nonce, head)
        for tx in txs:
            receipt = self.confirmer.receipt(tx)
            if receipt is not None:
                self.confirmer.on_receipt(tx, receipt, head)
            elif mined_nonce > tx.nonce:
                self.resender.dropped(tx.id)  # another tx used the nonce: this one never lands
            elif tx.status == TxStatus.MINED.value:
                self.confirmer.unmined(tx)  # reorged out: the same bytes go again
            else:
                self.resender.without_receipt(tx, mined_nonce, head)
        return True, True
