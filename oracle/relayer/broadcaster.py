"""The broadcaster: nonces, simulation, and save-then-send.

What it guarantees: a fulfilment is simulated before it is signed (an ``eth_call`` at the
gas limit it will carry; an optimistic move, its gas estimate);
answers that go through ``fulfill`` and are ready together go out as ``fulfillBatch``
transactions (:mod:`~oracle.relayer.batches`), each simulated once, and an answer the
simulation rejects goes alone, where its own simulation says what it is; each signed
transaction takes the next nonce (the larger of the database's and the node's pending
count), without waiting for earlier ones to be mined; the signed bytes are saved and the
request rows marked submitted in one database transaction *before* the bytes go to the
node, so a crash at any point leaves either nothing sent or a saved transaction that
:meth:`rebroadcast_saved` sends again, the same bytes with the same nonce, never a second
signature.

What it does not guarantee is delivery: whether the transaction is mined, stays mined, or
needs a higher fee is the confirmer's and resender's business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError

from oracle.chain.batch import rejected_items
from oracle.chain.client import CoordinatorClient, revert_from_exception
from oracle.db import InferenceRequest
from oracle.dev.crashpoints import crash_point
from oracle.relayer.attempts import (
    AttemptBuilder,
    Head,
    answer_call,
    is_batchable,
    is_posting,
    rows_call,
)
from oracle.relayer.batches import batch_gas_limit, plan_batches
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.store import RelayerStore
from oracle.settings import Settings
from oracle.types import HealthCode, HealthProblem, RequestStatus

log = structlog.get_logger(__name__)

SEND_BATCH = 512  # ready rows read per round
# Simulation failures that mean "wait and try again" rather than "this request is done".
# NotAssignedNode: inside another node's exclusive window, which passes.
# ChallengeWindowOpen: simulated a block early; the window closes.
_TRANSIENT_REVERTS = {
    "NotActiveNode",
    "InsufficientGasForCallback",
    "NotAssignedNode",
    "ChallengeWindowOpen",
}
_ALREADY_SENT_HINTS = ("already known", "already imported", "known transaction")
_NONCE_USED_HINTS = ("nonce too low", "nonce has already been used")
_UNFUNDED_HINTS = ("insufficient funds",)


@dataclass
class RelayerHealth:
    """What the node's health endpoint reads: when a round last completed, and what is
    wrong now (None when nothing is)."""

    last_tick_ok: float | None = None
    problem: HealthProblem | None = None

    def tick_ok(self) -> None:
        self.last_tick_ok = time.time()


class Broadcaster:
    """Signs and sends fulfilments for ready requests, one nonce after another."""

    def __init__(
        self,
        settings: Settings,
        coordinator: CoordinatorClient,
        store: RelayerStore,
        attempts: AttemptBuilder,
        confirmer: Confirmer,
        sender: str,
        health: RelayerHealth,
    ) -> None:
        self.settings = settings
        self.coordinator = coordinator
        self.w3: Web3 = coordinator.w3
        self.store = store
        self.attempts = attempts
        self.confirmer = confirmer
        self.sender = sender
        self.health = health
        self.nonce: int | None = None
        self._bond: tuple[int, int] | None = None  # (head block, optimistic node bond)
        self.log = log.bind(signer=sender)

    # -- nonces ----------------------------------------------------------------------
    def initial_nonce(self) -> int:
        chain_nonce = self.w3.eth.get_transaction_count(self.sender, "pending")  # type: ignore[arg-type]
        db_max = self.store.highest_nonce()
        return max(chain_nonce, (db_max + 1) if db_max is not None else 0)

    def sync_nonce(self) -> int:
        """The next nonce, read from the node and the database if not known."""
        if self.nonce is None:
            self.nonce = self.initial_nonce()
        return self.nonce

    def forget_nonce(self) -> None:
        """Re-read the nonce before the next send (a tx was dropped, a round failed)."""
        self.nonce = None

    # -- sending ---------------------------------------------------------------------
    def send_ready(self, head: Head) -> int:
        """Sign and send every ready request: those answered through ``fulfill`` in batches
        when there are several, the rest alone; how many transactions were sent."""
        rows = self.store.requests_ready_to_send(SEND_BATCH, head.number)
        together = [row for row in rows if is_batchable(row)]
        alone = [row for row in rows if not is_batchable(row)]
        sent = 0
        if len(together) > 1 and self.settings.relayer.batch_max_items > 1:
            for batch in plan_batches(together, self.settings.relayer):
                sent += self.send_batch(batch, head)
        else:
            alone = together + alone
        return sent + sum(1 for row in alone if self.send(row, head))

    def send_batch(self, rows: list[InferenceRequest], head: Head) -> int:
        """One ``fulfillBatch`` for ``rows`` (a plan within the gas budget), simulated at the
        gas limit it will carry; answers the simulation rejects go alone instead (their own
        simulation says why). How many transactions were sent."""
        if len(rows) == 1:
            return int(self.send(rows[0], head))
        call = rows_call(self.coordinator, rows, 0)
        try:
            rejected = set(self._simulate_batch(rows, call.data))
        except (Web3Exception, ValueError) as exc:
            revert = revert_from_exception(exc)
            if revert is None:
                raise  # an RPC problem: retry on the next tick
            # The batch as a whole was refused (we are not an active node): each row's own
            # simulation records the verdict.
            self.log.warning("relayer.batch_refused", error=revert.name, rows=len(rows))
            return sum(1 for row in rows if self.send(row, head))
        sent = sum(1 for i in sorted(rejected) if self.send(rows[i], head))
        good = [row for i, row in enumerate(rows) if i not in rejected]
        if len(good) < 2:
            return sent + sum(1 for row in good if self.send(row, head))
        if rejected:
            call = rows_call(self.coordinator, good, 0)
        nonce = self.nonce if self.nonce is not None else self.initial_nonce()
        signed = self.attempts.sign(
            nonce=nonce,
            to=self.coordinator.address,
            gas_limit=batch_gas_limit(good, call.data, self.settings.relayer),
            fees=self.attempts.fees(head),
            data=call.data,
        )
        self.store.save_batch(good, signed)  # raises if a row changed: nothing saved
        self.nonce = nonce + 1
        crash_point("relayer.after_sign")
        self.broadcast(
            signed.tx_hash, signed.raw, head, self.log.bind(batch=[r.request_id for r in good])
        )
        return sent + 1

    def _simulate_batch(self, rows: list[InferenceRequest], data: HexStr) -> list[int]:
        """Indexes of the answers ``fulfillBatch`` (``data``) would reject now, at the gas it
        will carry."""
        tx: dict[str, Any] = {
            "from": self.sender,
            "to": self.coordinator.address,
            "data": data,
            "gas": batch_gas_limit(rows, data, self.settings.relayer),
        }
        result = self.w3.eth.call(tx, "latest")  # type: ignore[arg-type]
        return rejected_items(bytes(result), len(rows))

    def send(self, row: InferenceRequest, head: Head) -> bool:
        """Simulate, sign, save, send one row's call. The simulation is the only chain read:
        a request no longer open reverts it with ``RequestNotPending`` (``NoClaim`` for our
        posted answer), which records what the chain says instead.

        A ``fulfill`` gets the gas limit a batch would allow it (its callback gas and
        checks, see :mod:`~oracle.relayer.batches`) and is simulated with ``eth_call`` at
        that limit (one execution, where a gas estimate searches); the optimistic moves are
        estimated."""
        rlog = self.log.bind(request_id=row.request_id, request_pk=row.id)
        bond = self._node_bond(head) if is_posting(row) else 0
        answer = answer_call(self.coordinator, row, bond)
        data = answer.data
        call: dict[str, Any] = {
            "from": self.sender,
            "to": self.coordinator.address,
            "data": data,
            "value": answer.value,
        }
        try:
            if answer.function == "fulfill":
                gas_limit = batch_gas_limit([row], data, self.settings.relayer)
                self.w3.eth.call({**call, "gas": gas_limit}, "latest")  # type: ignore[arg-type,typeddict-item]
            else:
                gas = self.w3.eth.estimate_gas(call)  # type: ignore[arg-type]
                gas_limit = int(gas * self.settings.relayer.gas_limit_multiplier)
        except (Web3Exception, ValueError) as exc:
            return self._simulation_failed(row, exc, rlog)
        fees = self.attempts.fees(head)
        nonce = self.nonce if self.nonce is not None else self.initial_nonce()
        signed = self.attempts.sign(
            nonce=nonce,
            to=self.coordinator.address,
            gas_limit=gas_limit,
            fees=fees,
            data=data,
            value=answer.value,
        )
        self.store.save_fulfilment(row, signed)  # raises if the row changed: nothing saved
        self.nonce = nonce + 1
        crash_point("relayer.after_sign")
        self.broadcast(signed.tx_hash, signed.raw, head, rlog)
        return True

    def _node_bond(self, head: Head) -> int:
        """The bond an optimistic answer posts now: read once per head, not once per row."""
        if self._bond is None or self._bond[0] != head.number:
            self._bond = (head.number, self.coordinator.optimistic_config().node_bond)
        return self._bond[1]

    def _simulation_failed(self, row: InferenceRequest, exc: Exception, rlog: Any) -> bool:
        revert = revert_from_exception(exc)
        if revert is None:
            raise exc  # an RPC problem, not a verdict on the request: retry on the next tick
        if revert.name in ("RequestNotPending", "NoClaim"):
            self.confirmer.not_pending(row, rlog)
        elif revert.name in _TRANSIENT_REVERTS:
            self.health.problem = HealthProblem(
                HealthCode.FULFIL_BLOCKED, f"fulfil simulation reverted: {revert.name}"
            )
            rlog.warning("relayer.simulation_transient", error=revert.name)
        else:
            self.confirmer.close(
                row, RequestStatus.ABANDONED, f"fulfil simulation reverted: {revert.name}"
            )
            rlog.error(
                "relayer.simulation_reverted", error=revert.name, args=str(revert.error_args)
            )
        return False

    def broadcast(self, tx_hash: str, raw: bytes, head: Head, rlog: Any) -> None:
        """Send saved bytes; a node that already has them, or a nonce already used, is not
        an error here (receipt tracking tells what happened)."""
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
                unfunded = any(hint in message for hint in _UNFUNDED_HINTS)
                self.health.problem = HealthProblem(
                    HealthCode.SIGNER_UNFUNDED if unfunded else HealthCode.BROADCAST_FAILING,
                    f"broadcast failed: {str(exc)[:120]}",
                )
                return
        crash_point("relayer.after_broadcast")
        self.store.mark_broadcast(tx_hash, head.number)
        self.health.problem = None
        rlog.info("relayer.broadcast", tx_hash=tx_hash)

    def rebroadcast_saved(self, head: Head) -> None:
        """Send again every saved transaction not yet known to have reached a node."""
        for tx in self.store.txs_needing_rebroadcast():
            self.broadcast(tx.tx_hash, tx.raw, head, self.log.bind(tx_id=tx.id, nonce=tx.nonce))
