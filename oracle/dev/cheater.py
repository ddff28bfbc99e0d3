"""TEST ONLY: a node that posts WRONG optimistic answers and never proves them.

DO NOT RUN THIS AGAINST ANY REAL CHAIN. It exists so the tests and ``make demo-optimistic``
can show the watcher catching a dishonest node: it stakes, declares the models it is given,
and answers every Optimistic request assigned to it with an output that is off by
``offset`` (from the circuit's output when it holds the circuit, else a fixed value), with
the node bond. Its bond and part of its stake are meant to be slashed. Its key defaults to
the dev ``CHEATER_KEY`` (anvil account 6).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.client import CoordinatorClient, RequestedEvent
from oracle.chain.deploy import register_node, send, serve_model
from oracle.dev.keys import CHEATER_KEY
from oracle.errors import OracleError
from oracle.fixedpoint import BN254_R
from oracle.types import Mode

if TYPE_CHECKING:
    from oracle.watcher.checker import CircuitChecker

log = structlog.get_logger(__name__)

FIXED_WRONG = 123_456_789  # posted when the circuit is not at hand
_HALF_FIELD = BN254_R // 2


def wrong_output(right: Sequence[int] | None, length: int, offset: int) -> list[int]:
    """An output of ``length`` values in the signed field range that is not ``right``."""
    if right is None:
        return [FIXED_WRONG] * length
    return [v + offset if v + offset <= _HALF_FIELD else v - offset for v in right]


class Cheater:
    """TEST-ONLY double of a dishonest node. A long-running part: start / run / stop."""

    name = "cheater"

    def __init__(
        self,
        client: CoordinatorClient,
        model_ids: Sequence[str],
        account: LocalAccount | None = None,
        checker: CircuitChecker | None = None,
        offset: int = 1,
        poll_interval_s: float = 0.1,
    ) -> None:
        if offset == 0:
            raise ValueError("a cheater with offset 0 would be honest")
        self.client = client
        self.w3 = client.w3
        self.model_ids = [m.lower() for m in model_ids]
        self.account: LocalAccount = account or Account.from_key(CHEATER_KEY)
        self.checker = checker
        self.offset = offset
        self.poll_interval_s = poll_interval_s
        self.posted: list[int] = []  # request ids answered (wrongly)
        self._next_block: int | None = None
        self._stop = threading.Event()
        self.log = log.bind(cheater=self.account.address, test_only=True)

    def setup(self, stake: int) -> None:
        """Stake (if not registered) and declare the models."""
        register_node(self.w3, self.account, self.client.address, stake)
        for model_id in self.model_ids:
            serve_model(self.w3, self.account, self.client.address, model_id)
        self.log.warning("cheater.ready", models=self.model_ids)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        if self._next_block is None:
            self._next_block = self.w3.eth.block_number

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                self.log.warning("cheater.poll_failed", error=type(exc).__name__, detail=str(exc))
            self._stop.wait(self.poll_interval_s)

    def stop(self) -> None:
        self._stop.set()

    # -- work ------------------------------------------------------------------------
    def poll_once(self) -> None:
        head = self.w3.eth.block_number
        start = self._next_block if self._next_block is not None else head
        if start > head:
            return
        for ev in self.client.requested_logs(start, head):
            if self._mine(ev):
                self._post_wrong(ev)
        self._next_block = head + 1

    def _mine(self, ev: RequestedEvent) -> bool:
        return (
            int(ev.mode) == Mode.OPTIMISTIC
            and ev.assignee == self.account.address
            and ev.model_id.lower() in self.model_ids
        )

    def _post_wrong(self, ev: RequestedEvent) -> None:
        req = ev.as_request()
        right: list[int] | None = None
        if self.checker is not None:
            try:
                right = self.checker.output(ev.model_id, ev.input, f"cheat-{ev.request_id}")
            except OracleError:  # NotHeldError, ProofError: post the fixed value
                right = None
        length = int(self.client.model(ev.model_id)["output_length"])
        output = wrong_output(right, length, self.offset)
        bond = self.client.optimistic_config().node_bond
        fn = self.client.contract.functions.postOptimistic(req.as_tuple(), output)
        try:
            receipt = send(self.w3, self.account, fn, value=bond)
        except OracleError as exc:
            self.log.warning("cheater.post_failed", request_id=ev.request_id, error=str(exc))
            return
        self.posted.append(int(ev.request_id))
        self.log.warning(
            "cheater.posted_wrong",
            request_id=ev.request_id,
            output=output,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        )
