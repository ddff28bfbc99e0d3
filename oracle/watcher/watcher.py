"""The watcher: other nodes' optimistic answers in, challenges and slashings out.

Each poll reads ``OptimisticAnswerPosted`` logs up to ``confirmations`` below the head and
records one ``watches`` row per answer with a verdict: the circuit's output for the
request's input agrees with the posted one, differs from it, or was not checked (the
answer is ours or our node's, the model is switched off or its circuit not held, or a
challenge would exceed the budget of bonds at risk). Then it moves each row on: a wrong
answer is challenged while its window is open; after the proof deadline a challenge nobody
answered with a proof is finalised (the node is slashed, our bond and share are credited to
us); a challenge defeated by a proof is recorded as lost.

What it guarantees: a transaction is simulated first, its hash is saved before it is sent,
and after a restart a saved transaction is looked up (mined, pending, or never sent) before
anything is sent again, so one answer gets at most one challenge from us. A revert that
means someone else moved first (``AlreadyChallenged``, ``ChallengeWindowClosed``,
``NoClaim``) closes the row; it never stops the watcher. What it leaves to others: fee
bumping (a challenge is small and the window is many blocks) and reorgs deeper than
``confirmations`` (a row whose answer left the chain stays as it was).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.chain.optimistic import ClaimStruct, PostedAnswer
from oracle.dev.crashpoints import crash_point
from oracle.errors import ProofError
from oracle.settings import ChainSettings, Settings, WatcherSettings
from oracle.types import WatchStatus, WatchVerdict
from oracle.watcher.checker import CircuitChecker, NotHeldError
from oracle.watcher.store import Verdict, WatchStore
from oracle.watcher.txs import SignedTx, TxSender, TxState

log = structlog.get_logger(__name__)

ZERO_MODEL = "0x" + "00" * 32
# Reverts of a challenge that mean another party already settled the question (a challenge
# by someone else is found from its event: ``AlreadyChallenged`` or ``ClaimMismatch``).
TOO_LATE = frozenset({"ChallengeWindowClosed", "NoClaim", "ClaimMismatch", "AlreadyChallenged"})


@dataclass(frozen=True)
class Game:
    """What ``challenge`` and ``finalize`` take for one row."""

    req: RequestStruct
    claim: ClaimStruct


class Watcher:
    """A long-running part: :meth:`start`, :meth:`run` (until :meth:`stop`), :meth:`stop`."""

    name = "watcher"

    def __init__(
        self,
        settings: WatcherSettings,
        chain: ChainSettings,
        client: CoordinatorClient,
        store: WatchStore,
        checker: CircuitChecker,
        account: LocalAccount,
    ) -> None:
        self.settings = settings
        self.chain = chain
        self.client = client
        self.w3: Web3 = client.w3
        self.store = store
        self.checker = checker
        self.account = account
        self.address = account.address
        self.sender = TxSender(client.w3, account, client.address)
        self.skip_nodes = {self.address.lower()} | (
            {settings.own_node.lower()} if settings.own_node else set()
        )
        self._next_block: int | None = None
        self._games: dict[int, Game] = {}
        self._stop = threading.Event()
        self.log = log.bind(coordinator=client.address, watcher=self.address)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._next_block = None  # re-derived from the rows on the first poll

    def run(self) -> None:
        """Poll until :meth:`stop`; RPC and database errors are logged and retried."""
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:
                self.log.warning("watcher.poll_failed", error=type(exc).__name__, detail=str(exc))
            self._stop.wait(self.settings.poll_interval_s)

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> None:
        self.scan()
        self.act()

    # -- reading answers -------------------------------------------------------------
    def scan(self) -> list[int]:
        """Record the answers posted since the last scan; the ids of the new rows."""
        safe = self.w3.eth.block_number - self.chain.confirmations
        if self._next_block is None:
            self._next_block = self._resume_block(safe)
        from_block = self._next_block
        if safe < from_block:
            return []
        to_block = min(safe, from_block + self.chain.log_range - 1)
        new: list[int] = []
        for posted in self.client.posted_logs(from_block, to_block):
            if not self.store.exists(posted):
                row_id = self._check(posted)
                if row_id is not None:
                    new.append(row_id)
        self._next_block = to_block + 1
        return new

    def _resume_block(self, safe: int) -> int:
        highest = self.store.highest_posted_block()
        if highest is not None:
            start = highest  # answers of that block may be partly recorded: rescan it
        else:
            window = self.client.optimistic_config().challenge_window_blocks
            start = max(safe - window, 0)
        self.log.info("watcher.cursor", from_block=start, resumed=highest is not None)
        return start

    def _check(self, posted: PostedAnswer) -> int | None:
        bound = self.log.bind(request_id=posted.request_id, posted_block=posted.block_number)
        req = self.client.request_of(posted.request_id, posted.block_number)
        model_id = req.model_id.lower() if req is not None else ZERO_MODEL
        verdict = self._verdict(posted, req)
        row_id = self.store.record(posted, model_id, verdict)
        if row_id is not None:
            if req is not None:
                self._games[row_id] = Game(req, posted.claim())
            bound.info(
                "watcher.answer_seen",
                node=posted.node,
                model_id=model_id,
                verdict=verdict.verdict.value,
                detail=verdict.detail,
            )
        return row_id

    def _verdict(self, posted: PostedAnswer, req: RequestStruct | None) -> Verdict:
        skipped = WatchVerdict.SKIPPED
        watching = WatchStatus.WATCHING
        if req is None:
            return Verdict(skipped, watching, detail="request not found on chain")
        if posted.node.lower() in self.skip_nodes:
            return Verdict(skipped, watching, detail="our own answer")
        model_id = req.model_id.lower()
        if self.settings.models is not None and model_id not in self.settings.models:
            return Verdict(skipped, watching, detail="model switched off")
        try:
            circuit = self.checker.output(model_id, req.input, f"watch-{req.request_id}")
        except NotHeldError as exc:
            return Verdict(skipped, watching, detail=f"circuit not held: {exc}")
        except ProofError as exc:
            return Verdict(skipped, watching, detail=f"circuit cannot run the input: {exc}")
        if circuit == list(posted.output):
            return Verdict(WatchVerdict.AGREES, watching, circuit)
        bond = self.client.optimistic_config().challenger_bond
        at_risk = self.store.bonds_at_risk()
        if at_risk + bond > self.settings.budget_wei:
            detail = (
                f"differs from the circuit, over budget: {at_risk} wei at risk + {bond} > "
                f"{self.settings.budget_wei}"
            )
            return Verdict(skipped, watching, circuit, detail)
        return Verdict(WatchVerdict.DIFFERS, WatchStatus.CHALLENGING, circuit, challenger_bond=bond)

    # -- acting on rows --------------------------------------------------------------
    def act(self) -> None:
        head = self.w3.eth.block_number
        for row in self.store.with_status(WatchStatus.CHALLENGING):
            self._challenge(row)
        for row in self.store.with_status(WatchStatus.CHALLENGED):
            self._resolve(row, head)
        for row in self.store.with_status(WatchStatus.WATCHING):
            if head > row.challenge_deadline:
                self._close(row.id, status=WatchStatus.CLOSED)

    def _game(self, row: Any, challenged: bool) -> Game:
        game = self._games.get(row.id)
        if game is None:
            req = self.client.request_of(row.request_id, row.posted_block)
            if req is None:
                raise LookupError(f"request {row.request_id} not found before its answer")
            claim = ClaimStruct(
                tuple(int(v) for v in row.posted_output),
                row.node,
                int(row.bond),
                row.challenge_deadline,
                row.proof_deadline,
            )
            game = self._games[row.id] = Game(req, claim)
        if not challenged:
            return game
        claim = ClaimStruct(
            game.claim.output,
            game.claim.node,
            game.claim.bond,
            game.claim.challenge_deadline,
            game.claim.proof_deadline,
            self.address,
            int(row.challenger_bond),
        )
        return Game(game.req, claim)

    def _challenge(self, row: Any) -> None:
        bound = self.log.bind(request_id=row.request_id, posted_block=row.posted_block)
        if row.challenge_tx is not None:
            state, block = self.sender.state(row.challenge_tx)
            if state is TxState.MINED:
                self.store.update(row.id, status=WatchStatus.CHALLENGED)
                bound.info("watcher.challenged", tx_hash=row.challenge_tx, block=block)
                return
            if state is TxState.PENDING:
                return
            bound.warning("watcher.challenge_not_mined", tx_hash=row.challenge_tx, state=state)
        game = self._game(row, challenged=False)
        value = int(row.challenger_bond)
        data = self.client.challenge_calldata(game.req, game.claim)
        revert = self.sender.simulate(data, value)
        if revert is not None:
            # Once challenged, the stored claim names its challenger: ours no longer matches.
            first = self._first_challenge(row)
            if first is not None:
                challenger, tx_hash = first
                if challenger == self.address:  # our earlier transaction got there
                    self.store.update(row.id, status=WatchStatus.CHALLENGED, challenge_tx=tx_hash)
                    bound.info("watcher.challenged", tx_hash=tx_hash)
                    return
                detail = f"someone else challenged first: {challenger}"
            elif revert.name in TOO_LATE:
                detail = f"someone else moved first: {revert}"
            else:
                self.store.update(row.id, detail=f"challenge would revert: {revert}")
                bound.warning("watcher.challenge_refused", revert=str(revert))
                return
            self._close(row.id, status=WatchStatus.CLOSED, detail=detail, challenge_tx=None)
            bound.info("watcher.challenge_moot", detail=detail)
            return
        signed = self.sender.sign(data, value)
        self.store.update(row.id, challenge_tx=signed.tx_hash)
        crash_point("watcher.after_sign")
        self._send(signed)
        bound.info("watcher.challenge_sent", tx_hash=signed.tx_hash, bond=value)

    def _resolve(self, row: Any, head: int) -> None:
        bound = self.log.bind(request_id=row.request_id, posted_block=row.posted_block)
        if row.resolve_tx is not None:
            state, _ = self.sender.state(row.resolve_tx)
            if state is TxState.PENDING:
                return
            if state is TxState.MINED:
                self._won(row, row.resolve_tx, bound)
                return
            bound.warning("watcher.finalize_not_mined", tx_hash=row.resolve_tx, state=state)
        defeated = self._event_after(row, "ChallengeDefeated")
        if defeated is not None:
            self._close(
                row.id, status=WatchStatus.LOST, resolve_tx=defeated, detail="proven by the node"
            )
            bound.info("watcher.challenge_lost", tx_hash=defeated)
            return
        slashed = self._event_after(row, "OptimisticAnswerSlashed")
        if slashed is not None:  # someone else called finalize for us
            self._won(row, slashed, bound)
            return
        if head <= row.proof_deadline:
            return
        game = self._game(row, challenged=True)
        data = self.client.finalize_calldata(game.req, game.claim)
        revert = self.sender.simulate(data)
        if revert is not None:
            self.store.update(row.id, detail=f"finalize would revert: {revert}")
            bound.warning("watcher.finalize_refused", revert=str(revert))
            return
        signed = self.sender.sign(data)
        self.store.update(row.id, resolve_tx=signed.tx_hash)
        crash_point("watcher.after_sign")
        self._send(signed)
        bound.info("watcher.finalize_sent", tx_hash=signed.tx_hash)

    def _won(self, row: Any, tx_hash: str, bound: Any) -> None:
        self._close(row.id, status=WatchStatus.WON, resolve_tx=tx_hash, detail=None)
        bound.info("watcher.challenge_won", tx_hash=tx_hash)
        if self.settings.withdraw:
            self._withdraw(bound)

    def _close(self, row_id: int, **values: Any) -> None:
        """A terminal update: the row needs nothing more from us."""
        self.store.update(row_id, **values)
        self._games.pop(row_id, None)

    def _withdraw(self, bound: Any) -> None:
        data = self.client.contract.encode_abi("withdrawFees", args=[self.address])
        if self.sender.simulate(data) is not None:
            return  # nothing owed (already withdrawn)
        signed = self.sender.sign(data)
        self._send(signed)
        bound.info("watcher.withdrawn", tx_hash=signed.tx_hash)

    def _first_event(self, row: Any, event_name: str) -> Any | None:
        """The first ``event_name`` log of this request from its posting block on."""
        event = getattr(self.client.contract.events, event_name)()
        logs = event.get_logs(
            from_block=row.posted_block, argument_filters={"requestId": row.request_id}
        )
        return logs[0] if logs else None

    def _event_after(self, row: Any, event_name: str) -> str | None:
        """The transaction of the first ``event_name`` of this request after its posting."""
        ev = self._first_event(row, event_name)
        return None if ev is None else _tx_hash(ev)

    def _first_challenge(self, row: Any) -> tuple[str, str] | None:
        """(challenger, transaction) of the answer's challenge, if it was challenged."""
        ev = self._first_event(row, "AnswerChallenged")
        if ev is None:
            return None
        return Web3.to_checksum_address(ev["args"]["challenger"]), _tx_hash(ev)

    def _send(self, signed: SignedTx) -> None:
        """Broadcast (a seam: tests stop a watcher here, as a crash would)."""
        self.sender.send(signed)


def _tx_hash(ev: Any) -> str:
    return "0x" + bytes(ev["transactionHash"]).hex().removeprefix("0x")


def build_watcher(settings: Settings) -> Watcher:
    """A watcher wired from settings: RPC, Coordinator, database (migrated), key, store."""
    from oracle.chain.client import connect
    from oracle.chain.signer import load_signer
    from oracle.db import Database
    from oracle.models.store import ArtifactStore

    w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
    client = CoordinatorClient(w3, settings.coordinator_address())
    db = Database(settings.db.url)
    db.require_schema()
    account = load_signer(settings.watcher.signer)
    store = WatchStore(db, int(w3.eth.chain_id), client.address)
    checker = CircuitChecker(client, ArtifactStore(settings.store.path), settings.watcher.workdir)
    return Watcher(settings.watcher, settings.chain, client, store, checker, account)
