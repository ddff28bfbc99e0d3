"""The confirmer: what the chain says happened to our transactions and requests.

What it guarantees: a transaction with a receipt is taken as mined, then, at
``confirmations`` deep, settled: a confirmed fulfilment closes its requests (confirmed, or
errored when the answer was an error; a batch's answer the Coordinator rejected on its own
counts as reverted), a reverted one re-opens them for another try until
:data:`MAX_REVERTED_ATTEMPTS`, then abandons it. Until ``finality_depth`` it keeps
watching confirmed transactions: one whose receipt vanished in a reorg goes back to
signed (the same bytes go out again) and its request is open again. A request the chain no
longer holds as pending is recorded as the chain says: our own late fulfilment as
confirmed, anything else as cancelled.

It sends nothing itself: saved transactions are sent by the broadcaster, and transactions
without a receipt (dropped, stuck, forgotten) are the resender's.
"""

from __future__ import annotations

from typing import Any

import structlog
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound

from oracle.chain.batch import rejected_in_receipt
from oracle.chain.client import CoordinatorClient
from oracle.db import InferenceRequest, Transaction
from oracle.db.models import utcnow
from oracle.dev.crashpoints import crash_point
from oracle.relayer.attempts import Head
from oracle.relayer.store import RelayerStore, ready_status
from oracle.settings import Settings
from oracle.types import RequestStatus

log = structlog.get_logger(__name__)

MAX_REVERTED_ATTEMPTS = 3


def reverted(row: InferenceRequest) -> dict[str, Any]:
    """A fulfilment of ``row`` reverted (or, in a batch, was rejected): it is re-checked
    against the chain and tried again, until :data:`MAX_REVERTED_ATTEMPTS`."""
    reverts = row.fulfil_reverts + 1
    if reverts >= MAX_REVERTED_ATTEMPTS:
        error = (row.error or "") + " | fulfilment reverted on chain"
        return {"fulfil_reverts": reverts, "status": RequestStatus.ABANDONED.value, "error": error}
    return {"fulfil_reverts": reverts, "status": ready_status(row)}


def answered_status(row: InferenceRequest) -> str:
    """A confirmed fulfilment of ``row``: an answer, or an error the consumer heard."""
    return RequestStatus.ERRORED.value if row.error else RequestStatus.CONFIRMED.value


class Confirmer:
    """Follows receipts of one signer's transactions to confirmation and finality."""

    def __init__(
        self, settings: Settings, coordinator: CoordinatorClient, store: RelayerStore, sender: str
    ) -> None:
        self.settings = settings
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.store = store
        self.sender = sender
        self._watched_head: bytes | None = None
        self._final_below = -1  # confirmed txs mined at or below this block are final
        self._seen_in: dict[int, tuple[int, bytes]] = {}  # tx id -> block of its receipt
        self.log = log.bind(signer=sender)

    def receipt(self, tx: Transaction) -> Any:
        """The receipt of this nonce's transaction: the current one or one it replaced."""
        for tx_hash in [tx.tx_hash, *(tx.replaced_hashes or [])]:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                continue
        return None

    def on_receipt(self, tx: Transaction, receipt: Any, head: Head) -> None:
        """Mined: wait for ``confirmations`` blocks on top, then settle."""
        crash_point("relayer.after_receipt")
        mined = int(receipt["blockNumber"])
        if head.number - mined < self.settings.chain.confirmations:
            self.store.mark_mined(tx.id, mined)
            return
        self.settle(tx, receipt)

    def settle(self, tx: Transaction, receipt: Any) -> None:
        self._remember(tx, receipt)
        succeeded = int(receipt["status"]) == 1
        block = int(receipt["blockNumber"])
        rlog = self.log.bind(tx_hash=tx.tx_hash, block=block)
        if succeeded and (posted := self.coordinator.posted_in_receipt(receipt)):
            answer = posted[0]

            def on_chain(row: InferenceRequest) -> dict[str, Any]:
                return {
                    "status": RequestStatus.POSTED.value,
                    "claim_node": answer.node,
                    "claim_bond": str(answer.bond),
                    "challenge_deadline": answer.challenge_deadline,
                    "proof_deadline": answer.proof_deadline,
                }

            for row in self.store.settle(tx.id, block, True, on_chain):
                rlog.info(
                    "relayer.posted",
                    request_id=row.request_id,
                    challenge_deadline=answer.challenge_deadline,
                )
            return
        if not succeeded:
            for row in self.store.settle(tx.id, block, False, reverted):
                rlog.warning(
                    "relayer.reverted", request_id=row.request_id, reverted=row.fulfil_reverts + 1
                )
            return
        # One InferenceFulfilled per answer that landed; in a batch, an answer refused on its
        # own has an AnswerRejected instead and is tried again (re-checked against the chain).
        callbacks = {
            int(ev["requestId"]): bool(ev["callbackSucceeded"])
            for ev in self.coordinator.fulfilled_in_receipt(receipt)
        }
        rejected = rejected_in_receipt(self.coordinator, receipt)

        def landed(row: InferenceRequest) -> dict[str, Any]:
            if row.request_id in rejected and row.request_id not in callbacks:
                return reverted(row)
            return {
                "callback_succeeded": callbacks.get(row.request_id),
                "confirmed_at": utcnow(),
                "status": answered_status(row),
            }

        for row in self.store.settle(tx.id, block, True, landed):
            if row.request_id in callbacks or row.request_id not in rejected:
                rlog.info(
                    "relayer.confirmed",
                    request_id=row.request_id,
                    callback_succeeded=callbacks.get(row.request_id),
                )
            else:
                why = rejected[row.request_id]
                rlog.warning(
                    "relayer.answer_rejected",
                    request_id=row.request_id,
                    error=why.name if why is not None else "out of gas",
                    rejected=row.fulfil_reverts + 1,
                )

    def unmined(self, tx: Transaction) -> None:
        """A reorg took our mined tx out: the same bytes go again. If it had already been
        taken as confirmed, its request is open again until they land."""
        was = self.store.reopen(tx.id)
        self.log.warning("relayer.tx_unmined", tx_id=tx.id, was=was)

    def watch_confirmed(self, head: Head) -> None:
        """A confirmed fulfilment can still be reorged out until it is final: if its
        receipt vanishes, the same bytes go out again and the request is open again.

        One block header per block holding our young transactions, not one receipt per
        transaction: a transaction whose receipt we read in a block that still has the same
        hash is still there. Only the others (their block replaced, or not seen since the
        node started) have their receipts read."""
        txs = self.store.confirmed_txs_not_yet_final(self._final_below)
        if not txs:
            self._seen_in.clear()
            return  # nothing young enough to be reorged out: no RPC on an idle tick
        if head.hash == self._watched_head:
            return  # nothing can have changed without a new head block
        self._watched_head = head.hash
        self._final_below = head.number - self.settings.chain.finality_depth
        txs = [
            tx for tx in txs if tx.mined_block is not None and tx.mined_block > self._final_below
        ]
        self._seen_in = {tx.id: self._seen_in[tx.id] for tx in txs if tx.id in self._seen_in}
        blocks: dict[int, bytes] = {}
        suspects: list[Transaction] = []
        for tx in txs:
            seen = self._seen_in.get(tx.id)
            if seen is not None:
                number, block_hash = seen
                if number not in blocks:
                    blocks[number] = bytes(self.w3.eth.get_block(number)["hash"])
                if blocks[number] == block_hash:
                    continue  # its block is still on the chain, so is it
            suspects.append(tx)
        if not suspects:
            return
        mined_nonce = self.w3.eth.get_transaction_count(self.sender, "latest")  # type: ignore[arg-type]
        for tx in suspects:  # the nonce was read before the receipts
            receipt = self.receipt(tx)
            if receipt is not None:
                self._remember(tx, receipt)
                if int(receipt["blockNumber"]) != tx.mined_block:
                    self.store.move_mined_block(tx.id, int(receipt["blockNumber"]))
                continue
            self._seen_in.pop(tx.id, None)
            if mined_nonce > tx.nonce:
                continue  # the nonce is used on this fork too; the listener sees the request
            self.unmined(tx)

    def _remember(self, tx: Transaction, receipt: Any) -> None:
        """The block (number, hash) ``tx``'s receipt was read in."""
        self._seen_in[tx.id] = (int(receipt["blockNumber"]), bytes(receipt["blockHash"]))

    # -- requests the chain no longer holds ------------------------------------------
    def not_pending(self, row: InferenceRequest, rlog: Any) -> None:
        """The chain holds no commitment for a request the node still means to answer: it
        was answered (perhaps by a transaction of ours the node had given up on, mined after
        all) or cancelled; or our optimistic answer was resolved (finalised by anyone, or
        slashed). Record what the chain says, not a guess."""
        if row.claim_node is not None:
            slashed = self.coordinator.slashing_of(row.request_id, row.block_number)
            if slashed is not None and slashed["node"] == row.claim_node:
                self.close(row, RequestStatus.SLASHED, "optimistic answer not proven in time")
                rlog.error("relayer.slashed", slashed_wei=slashed["slashed"])
                return
        seen = self.coordinator.fulfilment_of(row.request_id, row.block_number)
        if seen is None:
            self.close(row, RequestStatus.CANCELLED, "not pending on chain: cancelled")
            rlog.info("relayer.skip_cancelled")
            return
        if seen["node"] != self.sender:
            self.close(
                row, RequestStatus.CANCELLED, f"not pending on chain: answered by {seen['node']}"
            )
            rlog.info("relayer.skip_answered_elsewhere", node=seen["node"])
            return
        tx = self.store.own_tx_with_hash(seen["tx_hash"], self._nonce_of(seen["tx_hash"]))
        done = self.store.record_own_fulfilment(
            row,
            tx.id if tx is not None else None,
            seen["block"],
            {
                "status": answered_status(row),
                "callback_succeeded": seen["callback_succeeded"],
                "confirmed_at": utcnow(),
            },
        )
        if done:
            rlog.warning(
                "relayer.found_own_fulfilment", tx_hash=seen["tx_hash"], block=seen["block"]
            )

    def _nonce_of(self, tx_hash: str) -> int | None:
        try:
            return int(self.w3.eth.get_transaction(HexBytes(tx_hash))["nonce"])
        except TransactionNotFound:
            return None  # found by hash alone then

    def close(self, row: InferenceRequest, status: RequestStatus, reason: str) -> None:
        """Close the row for good with ``reason`` (kept beside an error answer's own)."""
        error = row.error
        if status is RequestStatus.ABANDONED or error is None:
            error = reason if error is None else f"{error} | {reason}"
        if not self.store.close(row, status, error):
            self.log.info("relayer.row_changed", request_pk=row.id, wanted=status.value)
