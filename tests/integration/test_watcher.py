"""The watcher against the real Coordinator (anvil), a real EZKL circuit and a real database.

A model is registered with the ONNX hash of a circuit built for the session (and a mock
verifier on chain, so no proof is needed to settle): the watcher finds the circuit by that
hash, re-runs each optimistic answer's input through it, and challenges the wrong ones.
The cheating node is the test double :mod:`oracle.dev.cheater`; honest answers are posted
by hand with the circuit's output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.chain.deploy import ETHER, deploy, send
from oracle.chain.optimistic import PostedAnswer
from oracle.db import Database, Watch
from oracle.dev.cheater import Cheater
from oracle.dev.keys import CHEATER_KEY, REQUESTER_KEY, WATCHER_KEY
from oracle.dev.stack import LocalStack
from oracle.fixedpoint import to_fixed
from oracle.models.onboarding import check_circuit
from oracle.models.store import ArtifactStore
from oracle.settings import ChainSettings, SignerSettings, WatcherSettings
from oracle.types import Mode, WatchStatus, WatchVerdict
from oracle.watcher import Watcher
from oracle.watcher.checker import CircuitChecker
from oracle.watcher.store import WatchStore
from oracle.watcher.txs import SignedTx
from tests.support.chain import mine
from tests.support.contract import OUTSIDER, OWNER, Chain, register_raw, requested
from tests.support.models import seed_store
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

WATCHER = Account.from_key(WATCHER_KEY)
CHEATER = Account.from_key(CHEATER_KEY)


@dataclass
class Game:
    chain: Chain
    model_id: str
    input_scale: int
    store: ArtifactStore
    db: Database
    tmp: Path

    def watcher(self, cls: type[Watcher] = Watcher, **overrides: Any) -> Watcher:
        settings = WatcherSettings(
            enabled=True,
            signer=SignerSettings(private_key=WATCHER_KEY),  # type: ignore[arg-type]
            poll_interval_s=0.05,
            workdir=self.tmp / "watcher",
            **overrides,
        )
        client = self.chain.coord
        store = WatchStore(self.db, int(client.w3.eth.chain_id), client.address)
        checker = CircuitChecker(client, self.store, settings.workdir)
        chain_settings = ChainSettings(confirmations=0, poll_interval_s=0.05)
        return cls(settings, chain_settings, client, store, checker, WATCHER)

    def request(self, values: list[float]) -> RequestStruct:
        fixed = [to_fixed(v, self.input_scale) for v in values]
        return self.chain.request(fixed, mode=Mode.OPTIMISTIC, model=self.model_id)

    def circuit_output(self, req: RequestStruct) -> list[int]:
        checker = CircuitChecker(self.chain.coord, self.store, self.tmp / "honest")
        return checker.output(self.model_id, req.input, "honest")

    def post(self, req: RequestStruct, output: list[int]) -> PostedAnswer:
        fn = self.chain.coord.contract.functions.postOptimistic(req.as_tuple(), output)
        bond = self.chain.coord.optimistic_config().node_bond
        (posted,) = self.chain.coord.posted_in_receipt(send(self.chain.w3, CHEATER, fn, bond))
        return posted

    def rows(self) -> list[Watch]:
        with self.db.session() as s:
            return list(s.scalars(select(Watch).order_by(Watch.id)).all())

    def row(self, request_id: int) -> Watch | None:
        return next((r for r in self.rows() if r.request_id == request_id), None)

    def challenges(self, request_id: int) -> list[Any]:
        head = self.chain.w3.eth.block_number
        return [c for c in self.chain.coord.challenge_logs(0, head) if c.request_id == request_id]


@pytest.fixture
def game(chain: Chain, zk_store: dict[str, Any], db_url: str, tmp_path: Path) -> Iterator[Game]:
    """The real circuit 'a' registered on chain (mock verifier), served only by the cheater;
    the watcher's rows in SQLite and in PostgreSQL."""
    store = ArtifactStore(zk_store["root"])
    onnx_hash = zk_store["a"].onnx_hash
    _, manifest = check_circuit(store, onnx_hash)
    shape = (4, 1, manifest.input_scale, manifest.output_scale)
    model_id, _ = register_raw(
        chain.w3, chain.coord.contract, OWNER, onnx_hash, shape, chain.verifier.address
    )
    Cheater(chain.coord, [model_id], CHEATER).setup(10 * ETHER)
    db = Database(db_url)
    db.upgrade()
    try:
        yield Game(chain, model_id, manifest.input_scale, store, db, tmp_path)
    finally:
        db.dispose()


@contextmanager
def running(*parts: Watcher | Cheater) -> Iterator[None]:
    threads = []
    for part in parts:
        part.start()
        thread = threading.Thread(target=part.run, name=part.name, daemon=True)
        thread.start()
        threads.append(thread)
    try:
        yield
    finally:
        for part in parts:
            part.stop()
        for thread in threads:
            thread.join(timeout=10)


def status_of(game: Game, request_id: int) -> str | None:
    row = game.row(request_id)
    return None if row is None else row.status


def test_wrong_answers_are_challenged_and_slashed_after_the_proof_deadline(game: Game) -> None:
    chain, coord = game.chain, game.chain.coord
    config = coord.optimistic_config()
    watcher = game.watcher()
    cheater = Cheater(
        coord,
        [game.model_id],
        CHEATER,
        checker=CircuitChecker(coord, game.store, game.tmp / "cheater"),
    )
    balance_before = int(coord.contract.functions.nodeBalance(WATCHER.address).call())
    with running(watcher, cheater):
        reqs = [game.request([0.5 * i, -0.25, 1.0, 0.125]) for i in range(3)]
        wait_for(lambda: len(cheater.posted) == 3, 60, "the cheater's three wrong answers")
        for req in reqs:
            wait_for(
                lambda r=req: status_of(game, r.request_id) == WatchStatus.CHALLENGED,
                60,
                f"a challenge of request {req.request_id}",
            )
        rows = [game.row(r.request_id) for r in reqs]
        assert all(r is not None and r.verdict == WatchVerdict.DIFFERS for r in rows)
        # Nothing more happens until the proof deadline has passed: the node may still prove.
        last_deadline = max(r.proof_deadline for r in rows if r is not None)
        mine(chain.w3, last_deadline + 1 - chain.w3.eth.block_number)
        for req in reqs:
            wait_for(
                lambda r=req: status_of(game, r.request_id) == WatchStatus.WON,
                60,
                f"the slashing of request {req.request_id}",
            )
    gained = 0
    for req in reqs:
        row = game.row(req.request_id)
        assert row is not None and row.circuit_output == game.circuit_output(req)
        assert row.posted_output != row.circuit_output
        slashing = coord.slashing_of(req.request_id, row.posted_block)
        assert slashing is not None
        assert slashing["challenger"] == WATCHER.address
        assert slashing["node"] == CHEATER.address
        assert [c.challenger for c in game.challenges(req.request_id)] == [WATCHER.address]
        gained += config.challenger_bond + slashing["to_challenger"]
        print(  # the report's figure: blocks from the wrong answer to its slashing
            f"request {req.request_id}: posted {row.posted_block} slashed {slashing['block']} "
            f"({slashing['block'] - row.posted_block} blocks)"
        )
    balance_after = int(coord.contract.functions.nodeBalance(WATCHER.address).call())
    assert balance_after - balance_before == gained > 3 * config.challenger_bond


def test_an_honest_answer_is_not_challenged_and_left_to_finalise(game: Game) -> None:
    coord = game.chain.coord
    watcher = game.watcher()
    with running(watcher):
        req = game.request([0.25, 0.5, -1.0, 0.75])
        right = game.circuit_output(req)
        posted = game.post(req, right)
        wait_for(lambda: game.row(req.request_id), 60, "the watcher's row")
        row = game.row(req.request_id)
        assert row is not None
        assert (row.verdict, row.status) == (WatchVerdict.AGREES, WatchStatus.WATCHING)
        assert row.circuit_output == right
        mine(game.chain.w3, posted.challenge_deadline + 1 - game.chain.w3.eth.block_number)
        wait_for(lambda: status_of(game, req.request_id) == WatchStatus.CLOSED, 30, "closed")
    assert game.challenges(req.request_id) == []
    assert game.row(req.request_id).challenge_tx is None  # type: ignore[union-attr]
    # Unchallenged, it finalises normally (the watcher leaves that to the node).
    send(
        game.chain.w3,
        OWNER,
        coord.contract.functions.finalize(req.as_tuple(), posted.claim().as_tuple()),
    )
    assert coord.fulfilment_of(req.request_id, posted.block_number) is not None


def test_a_challenge_over_budget_is_skipped_with_its_reason(game: Game) -> None:
    bond = game.chain.coord.optimistic_config().challenger_bond
    watcher = game.watcher(budget_wei=bond)  # room for exactly one open challenge
    first = game.request([0.5, 0.5, 0.5, 0.5])
    second = game.request([0.25, 0.25, 0.25, 0.25])
    for req in (first, second):
        game.post(req, [v + 1 for v in game.circuit_output(req)])
    with running(watcher):
        wait_for(lambda: status_of(game, first.request_id) == WatchStatus.CHALLENGED, 60)
        wait_for(lambda: game.row(second.request_id), 60, "the second answer's row")
    row = game.row(second.request_id)
    assert row is not None
    assert row.verdict == WatchVerdict.SKIPPED and row.status == WatchStatus.WATCHING
    assert row.detail is not None and "over budget" in row.detail
    assert row.circuit_output is not None and row.circuit_output != row.posted_output
    assert len(game.challenges(first.request_id)) == 1
    assert game.challenges(second.request_id) == []


@pytest.mark.parametrize(
    "overrides,detail",
    [
        ({"models": ["0x" + "ab" * 32]}, "model switched off"),
        ({"own_node": CHEATER.address}, "our own answer"),
    ],
)
def test_a_model_switched_off_or_our_own_node_is_not_checked(
    game: Game, overrides: dict[str, Any], detail: str
) -> None:
    watcher = game.watcher(**overrides)
    req = game.request([0.5, 0.5, 0.5, 0.5])
    game.post(req, [v + 1 for v in game.circuit_output(req)])
    with running(watcher):
        wait_for(lambda: game.row(req.request_id), 60, "the answer's row")
    row = game.row(req.request_id)
    assert row is not None
    assert (row.verdict, row.detail) == (WatchVerdict.SKIPPED, detail)
    assert row.circuit_output is None
    assert game.challenges(req.request_id) == []


def test_a_challenge_defeated_by_a_proof_is_recorded_as_lost(game: Game) -> None:
    coord = game.chain.coord
    req = game.request([0.5, 0.25, -0.25, 0.5])
    posted = game.post(req, [v + 1 for v in game.circuit_output(req)])
    watcher = game.watcher()
    with running(watcher):
        wait_for(lambda: status_of(game, req.request_id) == WatchStatus.CHALLENGED, 60)
        row = game.row(req.request_id)
        assert row is not None and row.challenger_bond is not None
        claim = replace(
            posted.claim(), challenger=WATCHER.address, challenger_bond=int(row.challenger_bond)
        )
        # The mock verifier accepts the node's "proof": the challenge is lost.
        fn = coord.contract.functions.proveOptimistic(req.as_tuple(), claim.as_tuple(), b"p")
        send(game.chain.w3, CHEATER, fn)
        wait_for(lambda: status_of(game, req.request_id) == WatchStatus.LOST, 60, "lost")
    assert coord.slashing_of(req.request_id, posted.block_number) is None


def test_an_answer_someone_else_challenged_first_is_closed(game: Game) -> None:
    coord = game.chain.coord
    req = game.request([0.75, 0.25, -0.25, 0.5])
    posted = game.post(req, [v + 1 for v in game.circuit_output(req)])
    fn = coord.contract.functions.challenge(req.as_tuple(), posted.claim().as_tuple())
    send(game.chain.w3, OUTSIDER, fn, coord.optimistic_config().challenger_bond)
    with running(game.watcher()):
        wait_for(lambda: status_of(game, req.request_id) == WatchStatus.CLOSED, 60, "closed")
    row = game.row(req.request_id)
    assert row is not None and row.verdict == WatchVerdict.DIFFERS
    assert row.detail == f"someone else challenged first: {OUTSIDER.address}"
    assert [c.challenger for c in game.challenges(req.request_id)] == [OUTSIDER.address]
    assert game.watcher().store.bonds_at_risk() == 0  # its bond is no longer reserved


class CrashError(Exception):
    """Stands for the process dying at that point."""


class DiesBeforeSending(Watcher):
    def _send(self, signed: SignedTx) -> None:
        raise CrashError(signed.tx_hash)


class DiesAfterSending(Watcher):
    def _send(self, signed: SignedTx) -> None:
        super()._send(signed)
        raise CrashError(signed.tx_hash)


@pytest.mark.parametrize("crashing", [DiesBeforeSending, DiesAfterSending])
def test_a_restarted_watcher_does_not_challenge_twice(game: Game, crashing: type[Watcher]) -> None:
    w3 = game.chain.w3
    req = game.request([0.5, -0.5, 0.5, -0.5])
    game.post(req, [v + 1 for v in game.circuit_output(req)])
    nonce_before = w3.eth.get_transaction_count(WATCHER.address)
    first = game.watcher(crashing)
    first.start()
    with pytest.raises(CrashError) as crash:
        first.poll_once()
    row = game.row(req.request_id)
    assert row is not None and row.status == WatchStatus.CHALLENGING
    assert row.challenge_tx == str(crash.value)  # saved before it was (or was not) sent
    sent = crashing is DiesAfterSending
    assert len(game.challenges(req.request_id)) == int(sent)
    # The restarted watcher looks the saved transaction up before doing anything again.
    again = game.watcher()
    again.start()
    for _ in range(3):
        again.poll_once()
    row = game.row(req.request_id)
    assert row is not None and row.status == WatchStatus.CHALLENGED
    assert [c.challenger for c in game.challenges(req.request_id)] == [WATCHER.address]
    assert w3.eth.get_transaction_count(WATCHER.address) == nonce_before + 1
    if sent:
        assert row.challenge_tx == str(crash.value)
    receipt = w3.eth.get_transaction_receipt(row.challenge_tx)  # type: ignore[arg-type]
    assert receipt["status"] == 1


@dataclass
class StackGame:
    stack: LocalStack
    coord: CoordinatorClient
    model_id: str
    input_scale: int
    db: Database

    def request(self, values: list[float]) -> RequestStruct:
        assert self.stack.deployment is not None
        w3 = self.coord.w3
        consumer = w3.eth.contract(
            address=self.stack.deployment.example_consumer,
            abi=load_artifact("ExampleConsumer").abi,
        )
        fixed = [to_fixed(v, self.input_scale) for v in values]
        fn = consumer.functions.requestPrediction(
            bytes.fromhex(self.model_id[2:]), fixed, int(Mode.OPTIMISTIC), 200_000
        )
        fee = self.coord.quote_fee(self.model_id, Mode.OPTIMISTIC, 200_000)
        return requested(self.coord, send(w3, Account.from_key(REQUESTER_KEY), fn, value=fee))

    def row(self, request_id: int) -> Watch | None:
        with self.db.session() as s:
            return s.scalar(select(Watch).where(Watch.request_id == request_id))

    def status(self, request_id: int) -> str | None:
        row = self.row(request_id)
        return None if row is None else row.status


@contextmanager
def stack_game(
    zk_store: dict[str, Any],
    redis_url: str,
    workdir: Path,
    start_watcher: bool,
    watcher_config: dict[str, Any] | None = None,
) -> Iterator[StackGame]:
    """A local stack (no node, no workers) with circuit 'a' in its store, registered on
    chain with a mock verifier; ``watcher_config`` goes to the config file's watcher
    section."""
    with LocalStack(
        workdir,
        block_time=None,
        redis_url=redis_url,
        start_worker=False,
        start_prover=False,
        start_node=False,
        start_watcher=start_watcher,
        poll_interval_s=0.1,
        config_overrides={"metrics": {"port": 0}, "watcher": watcher_config or {}},
    ) as stack:
        assert stack.anvil is not None and stack.deployment is not None
        w3 = stack.anvil.w3()
        seed_store(zk_store, stack.workdir / "models")
        onnx_hash = zk_store["a"].onnx_hash
        _, manifest = check_circuit(ArtifactStore(stack.workdir / "models"), onnx_hash)
        coord = CoordinatorClient(w3, stack.deployment.coordinator)
        verifier, _ = deploy(w3, stack.owner, "MockVerifier")
        shape = (4, 1, manifest.input_scale, manifest.output_scale)
        model_id, _ = register_raw(w3, coord.contract, stack.owner, onnx_hash, shape, verifier)
        db = Database(stack.db_url)
        try:
            yield StackGame(stack, coord, model_id, manifest.input_scale, db)
        finally:
            db.dispose()


def test_the_local_stack_runs_oracle_watch_and_it_slashes_the_cheater(
    zk_store: dict[str, Any], redis_server: Any, tmp_path: Path
) -> None:
    """The watcher as a process (``oracle watch``, settings from the stack's config file and
    environment, withdrawing what it wins) against the test-only cheater the stack starts."""
    stack_dir = tmp_path / "stack"
    with stack_game(zk_store, redis_server.url(0), stack_dir, True, {"withdraw": True}) as g:
        cheater = g.stack.start_cheater([g.model_id])
        req = g.request([0.5, -0.5, 0.25, 1.0])
        wait_for(lambda: cheater.posted == [req.request_id], 60, "the cheater's wrong answer")
        wait_for(lambda: g.status(req.request_id) == WatchStatus.CHALLENGED, 120, "the challenge")
        row = g.row(req.request_id)
        assert row is not None
        w3 = g.coord.w3
        mine(w3, row.proof_deadline + 1 - w3.eth.block_number)
        wait_for(lambda: g.status(req.request_id) == WatchStatus.WON, 60, "the slashing")
        slashing = g.coord.slashing_of(req.request_id, req.requested_at_block)
        assert slashing is not None and slashing["challenger"] == WATCHER.address
        withdrawn = wait_for(
            lambda: g.coord.contract.events.FeesWithdrawn().get_logs(from_block=0),
            60,
            "the withdrawal",
        )
        won = g.coord.optimistic_config().challenger_bond + slashing["to_challenger"]
        assert [(e["args"]["node"], e["args"]["amount"]) for e in withdrawn] == [
            (WATCHER.address, won)
        ]
        assert g.coord.contract.functions.nodeBalance(WATCHER.address).call() == 0


@pytest.mark.faults
@pytest.mark.slow_fault
def test_oracle_watch_killed_between_signing_and_sending_challenges_once(
    zk_store: dict[str, Any], redis_server: Any, tmp_path: Path
) -> None:
    """A real process death (crash point ``watcher.after_sign``: the hash is saved, the
    transaction never sent); the next ``oracle watch`` sends the one challenge."""
    with stack_game(zk_store, redis_server.url(0), tmp_path / "stack", False) as g:
        cheater = g.stack.start_cheater([g.model_id])
        req = g.request([0.5, 0.5, -0.25, 1.0])
        wait_for(lambda: cheater.posted == [req.request_id], 60, "the cheater's wrong answer")
        w3 = g.coord.w3
        nonce = w3.eth.get_transaction_count(WATCHER.address)
        dying = g.stack.start_watcher_process({"ORACLE_CRASH_AT": "watcher.after_sign"})
        wait_for(lambda: not dying.alive(), 120, "the watcher to die at the crash point")
        assert dying.proc is not None and dying.proc.returncode == 137
        row = g.row(req.request_id)
        assert row is not None and row.status == WatchStatus.CHALLENGING
        assert row.challenge_tx is not None
        head = w3.eth.block_number
        assert g.coord.challenge_logs(0, head) == []
        assert w3.eth.get_transaction_count(WATCHER.address) == nonce
        g.stack.watcher = g.stack.start_watcher_process()  # stopped with the stack
        wait_for(lambda: g.status(req.request_id) == WatchStatus.CHALLENGED, 120, "the challenge")
        challenges = g.coord.challenge_logs(0, w3.eth.block_number)
        assert [(c.request_id, c.challenger) for c in challenges] == [
            (req.request_id, WATCHER.address)
        ]
        assert w3.eth.get_transaction_count(WATCHER.address) == nonce + 1
