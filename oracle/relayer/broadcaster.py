"""The broadcaster: nonces, simulation, and save-then-send.

What it guarantees: a fulfilment is simulated before it is signed (an ``eth_call`` at the
gas limit it will carry, computed from what the answer carries: :mod:`~oracle.relayer.gas`;
an optimistic move, its gas estimate); a simulation that fails is that answer's problem, never
the round's (:mod:`~oracle.relayer.retries`): an answer that runs out of gas is retried alone
with twice the gas up to ``relayer.max_answer_gas``, one the chain refuses for what it carries
becomes an error answer the consumer can act on, one refused for a reason that passes by
waiting is tried again after a bounded backoff, and the other ready answers go out in the
same round;
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
from oracle.chain.client import CoordinatorClient, RevertError, revert_from_exception
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
from oracle.relayer.batches import batch_gas_limit, plan_batches, smallest_first, within_cap
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.retries import RetryBook
from oracle.relayer.store import RelayerStore
from oracle.settings import Settings
from oracle.types import HealthCode, HealthProblem, RequestStatus

log = structlog.get_logger(__name__)

SEND_BATCH = 512  # ready rows read per round
# Simulation failures that mean "wait and try again" rather than "this request is done",
# each tried again after a bounded backoff (oracle.relayer.retries).
# NotAssignedNode: inside another node's exclusive window, which passes.
# ChallengeWindowOpen: simulated a block early; the window closes.
# NotActiveNode: our stake is not active (yet): every answer waits.
_TRANSIENT_REVERTS = {"NotActiveNode", "NotAssignedNode", "ChallengeWindowOpen"}
# Our gas, not the request: InsufficientGasForCallback (the exact-gas check), or an execution
# that ran out of gas without revert data (anvil: "OutOfGas", geth: "out of gas").
_NEEDS_MORE_GAS_REVERTS = {"InsufficientGasForCallback"}
_OUT_OF_GAS_HINTS = (
    "out of gas",
    "outofgas",
    "gas required exceeds",
    "intrinsic gas too low",
    "intrinsic gas too high",  # anvil: the EIP-7623 call-data floor above the gas limit
    "gasfloormorethangaslimit",
)
_ALREADY_SENT_HINTS = ("already known", "already imported", "known transaction")
_NONCE_USED_HINTS = ("nonce too low", "nonce has already been used")
_UNFUNDED_HINTS = ("insufficient funds",)


class AnswerGasError(Exception):
    """The answer still runs out of gas at ``relayer.max_answer_gas``."""


@dataclass
class RelayerHealth:
    """What the node's health endpoint reads: when a round last completed, what is wrong now
    (None when nothing is), and the answers waiting to be retried, by reason."""

    last_tick_ok: float | None = None
    problem: HealthProblem | None = None
    retries: RetryBook | None = None

    def retrying(self) -> dict[str, int]:
        return self.retries.reasons() if self.retries is not None else {}

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
        retries: RetryBook | None = None,
    ) -> None:
        self.settings = settings
        self.retries = retries or RetryBook(
            settings.relayer.max_transient_retries, settings.relayer.retry_backoff_max_blocks
        )
        health.retries = self.retries
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
        rows = [
            row
            for row in self.store.requests_ready_to_send(SEND_BATCH, head.number)
            if self.retries.due(row.id, head.number)
        ]
        relayer = self.settings.relayer
        together = [row for row in rows if is_batchable(row) and within_cap(row, relayer)]
        alone = [row for row in rows if not (is_batchable(row) and within_cap(row, relayer))]
        sent = 0
        if len(together) > 1 and self.settings.relayer.batch_max_items > 1:
            for batch in plan_batches(smallest_first(together), self.settings.relayer):
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
            # The batch as a whole was refused (we are not an active node) or failed (an RPC
            # error answer, not a dead connection: that raises past here and ends the round):
            # each row's own simulation records the verdict.
            revert = revert_from_exception(exc)
            self.log.warning(
                "relayer.batch_refused",
                error=revert.name if revert is not None else str(exc)[:160],
                rows=len(rows),
            )
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
            gas_limit=batch_gas_limit(good, call.data),
            fees=self.attempts.fees(head),
            data=call.data,
        )
        self.store.save_batch(good, signed)  # raises if a row changed: nothing saved
        self.nonce = nonce + 1
        for row in good:
            self.retries.clear(row.id)
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
            "gas": batch_gas_limit(rows, data),
        }
        result = self.w3.eth.call(tx, "latest")  # type: ignore[arg-type]
        return rejected_items(bytes(result), len(rows))

    def send(self, row: InferenceRequest, head: Head) -> bool:
        """Simulate, sign, save, send one row's call. The simulation is the only chain read:
        a request no longer open reverts it with ``RequestNotPending`` (``NoClaim`` for our
        posted answer), which records what the chain says instead.

        A ``fulfill`` gets the gas limit its shape is allowed (:mod:`~oracle.relayer.gas`)
        and is simulated with ``eth_call`` at that limit (one execution, where a gas
        estimate searches), with twice the gas while it runs out, up to the cap; the
        optimistic moves are estimated."""
        if not self.retries.due(row.id, head.number):
            return False
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
                gas_limit = self._fulfil_gas(row, call, rlog)
            else:
                gas = self.w3.eth.estimate_gas(call)  # type: ignore[arg-type]
                gas_limit = int(gas * self.settings.relayer.gas_limit_multiplier)
        except AnswerGasError as exc:
            return self._answer_failed(row, str(exc), head, rlog)
        except (Web3Exception, ValueError) as exc:
            return self._simulation_failed(row, exc, head, rlog)
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
        self.retries.clear(row.id)
        crash_point("relayer.after_sign")
        self.broadcast(signed.tx_hash, signed.raw, head, rlog)
        return True

    def _fulfil_gas(self, row: InferenceRequest, call: dict[str, Any], rlog: Any) -> int:
        """The gas limit at which ``fulfill`` simulates cleanly: the answer's allowance,
        doubled while the simulation runs out of gas, up to ``relayer.max_answer_gas``
        (then :class:`AnswerGasError`). Any other failure is raised as it came."""
        cap = self.settings.relayer.max_answer_gas
        gas = min(batch_gas_limit([row], call["data"]), cap)
        while True:
            try:
                self.w3.eth.call({**call, "gas": gas}, "latest")  # type: ignore[arg-type,typeddict-item]
                return gas
            except (Web3Exception, ValueError) as exc:
                if not _needs_more_gas(exc):
                    raise
                if gas >= cap:
                    raise AnswerGasError(
                        f"answer needs more gas than the node's cap ({cap}): out of gas"
                    ) from exc
                rlog.warning("relayer.answer_out_of_gas", gas=gas, retry_gas=min(2 * gas, cap))
                gas = min(2 * gas, cap)

    def _node_bond(self, head: Head) -> int:
        """The bond an optimistic answer posts now: read once per head, not once per row."""
        if self._bond is None or self._bond[0] != head.number:
            self._bond = (head.number, self.coordinator.optimistic_config().node_bond)
        return self._bond[1]

    def _simulation_failed(
        self, row: InferenceRequest, exc: Exception, head: Head, rlog: Any
    ) -> bool:
        """A failed simulation of one answer (a dead RPC connection never gets here: it
        raises past the round): what the chain says decides what becomes of the answer."""
        revert = revert_from_exception(exc)
        if revert is None:
            # The node answered with an error that is not a revert: this answer's problem.
            return self._answer_failed(
                row, f"fulfil simulation failed: {str(exc)[:120]}", head, rlog
            )
        if revert.name in ("RequestNotPending", "NoClaim"):
            self.retries.clear(row.id)
            self.confirmer.not_pending(row, rlog)
            return False
        if revert.name in _TRANSIENT_REVERTS:
            return self._wait_and_retry(row, revert, head, rlog)
        rlog.error("relayer.simulation_reverted", error=revert.name, args=str(revert.error_args))
        return self._answer_failed(row, f"fulfil simulation reverted: {revert.name}", head, rlog)

    def _wait_and_retry(
        self, row: InferenceRequest, revert: RevertError, head: Head, rlog: Any
    ) -> bool:
        """A revert that passes by waiting: tried again after a backoff, a bounded number
        of times, then the request is given up with the reason."""
        if self.retries.transient(row.id, revert.name, head.number):
            self.health.problem = HealthProblem(
                HealthCode.FULFIL_BLOCKED, f"fulfil simulation reverted: {revert.name}"
            )
            rlog.warning("relayer.simulation_transient", error=revert.name)
            return False
        self.confirmer.close(
            row,
            RequestStatus.ABANDONED,
            f"fulfil simulation reverted: {revert.name}, "
            f"{self.settings.relayer.max_transient_retries} retries used",
        )
        rlog.error("relayer.gave_up", error=revert.name)
        return False

    def _answer_failed(self, row: InferenceRequest, reason: str, head: Head, rlog: Any) -> bool:
        """An answer the chain will not take as it is: sent instead as an error answer (no
        output, no proof: cheap, and the consumer hears why) when it can be one, else the
        request is closed with the reason. True when a transaction was sent."""
        self.retries.clear(row.id)
        if row.claim_node is None and not row.error:
            updated = self.store.make_error_answer(row, reason)
            if updated is None:
                return False  # the row moved on meanwhile: its new state decides
            rlog.warning("relayer.error_answer", reason=reason)
            return self.send(updated, head)
        self.confirmer.close(row, RequestStatus.ABANDONED, reason)
        rlog.error("relayer.abandoned", reason=reason)
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


def _needs_more_gas(exc: Exception) -> bool:
    """Whether a failed simulation ran short of gas (ours to give, not the request's)."""
    revert = revert_from_exception(exc)
    if revert is not None:
        return revert.name in _NEEDS_MORE_GAS_REVERTS
    message = str(exc).lower()
    return any(hint in message for hint in _OUT_OF_GAS_HINTS)
