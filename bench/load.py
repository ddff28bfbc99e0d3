"""Load benchmark: bursts and a steady rate against the whole local stack, on 1 s and 250 ms
blocks, with a per-stage profile of where a request's time goes. ``make bench-load``.

Scenarios (``--scenarios``, comma-separated; each block time gets its own LocalStack):

* ``burst`` (1 s blocks): interval mining is paused, ``--burst`` plain requests are sent
  (pre-signed, from three dev accounts) and mined in ONE block (``evm_mine``), then 1 s
  mining resumes. Figures:
    - blocks until all answered = last fulfilment's block - the burst block (target <= 2);
    - answer rate / intake rate (target >= 0.8): the chain took in ``burst`` requests in
      one block time (intake = burst / block time); the node's answer rate is burst /
      seconds from the burst's block to the broadcast of its last answer. 1.0 means the
      node answers as fast as the chain takes requests in. When those answers are mined is
      the chain's cadence, not the node's: that view is printed too (answers mined per
      second from the burst's block to the last answer's block, = block time / that span,
      i.e. 1 / blocks when every answer lands in the next block). Also the relayer's pace
      during the burst (the gap between consecutive submissions).
* ``steady`` (1 s blocks): ``--rate`` plain requests a second for ``--duration`` seconds,
  sent at even moments (so they land anywhere in a block). Blocks to callback, latency,
  off-chain overhead (fulfilment broadcast - log seen by the node - inference, target
  p50 <= 20 ms, p99 <= 60 ms), and answers mined / requests mined over the sending window.
* ``busy`` (1 s blocks, after ``steady`` on the same stack): the same steady plain load
  while Zk requests on the example MLP's circuit (dev SRS) keep the prover busy (two
  outstanding at all times). Figure: plain p99 busy / plain p99 idle (target <= 1.2), on
  the latency from the request's block reaching the bench to the fulfilment's broadcast.
* ``fast`` (250 ms blocks): the steady load; blocks to callback p99 (target <= 2) and
  overhead p99 as a share of a block (target <= 25 %).

Between scenarios the chain is mined past the node's finality depth at once (see
:func:`settle`), so each starts with no young confirmed transactions to re-check.

Block times are those at which the bench first saw each block (polled every 10 ms): anvil's
timestamps are whole seconds. The per-stage profile comes from the node's own timestamps on
the request rows and their transactions (listener -> queue -> worker -> database -> relayer):
block -> log seen, seen -> queued, queue wait (queued -> inference start), inference,
inferred -> submitted (relayer pick-up), submitted -> broadcast, broadcast -> mined block.

Prints a table and JSON, and writes ``var/bench-load.png`` (latency distributions, blocks
to callback, cumulative requests and answers over time, per-stage p50/p99).

    PYTHONPATH=$PWD .venv/bin/python bench/load.py [--burst 200] [--rate 4] [--duration 15]
        [--scenarios burst,steady,busy,fast]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from sqlalchemy import select
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, connect
from oracle.db import Database, InferenceRequest, Transaction
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.stack import LocalStack
from oracle.fixedpoint import to_fixed
from oracle.models import onboarding, zk
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT

MODEL = ROOT / "models" / "example_mlp.onnx"
CALIBRATION = ROOT / "models" / "example_mlp.calibration.json"
CALLBACK_GAS = 300_000
BLOCK_GAS_LIMIT = 300_000_000  # 200 requests (~0.2M gas each) in one block, with room
PLAIN_KEYS = (ANVIL_DEV_KEYS[2], ANVIL_DEV_KEYS[4], ANVIL_DEV_KEYS[7])
ZK_KEY = ANVIL_DEV_KEYS[3]
STAGES = (
    ("block -> log seen", "block_seen"),
    ("seen -> queued", "seen_queued"),
    ("queue wait", "queue_wait"),
    ("inference", "inference"),
    ("inferred -> submitted", "inferred_submitted"),
    ("submitted -> broadcast", "submitted_broadcast"),
    ("broadcast -> mined block", "broadcast_mined"),
)


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def ts(value: datetime | None) -> float | None:
    """A row's timestamp as epoch seconds (SQLite hands them back naive, written in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class BlockClock:
    """The wall time at which this process first saw each block number (10 ms polling)."""

    def __init__(self, rpc_url: str) -> None:
        self.w3 = connect(rpc_url)
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-clock", daemon=True)

    def __enter__(self) -> BlockClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            number = int(self.w3.eth.block_number)
            now = time.time()
            for n in range(last + 1, number + 1):
                self.seen.setdefault(n, now)
            last = max(last, number)
            self._stop.wait(0.01)

    def at(self, block: int) -> float:
        deadline = time.monotonic() + 10
        while block not in self.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.seen[block]


@dataclass
class Sender:
    """Pre-signed ``ExampleConsumer.requestPrediction`` transactions from a few accounts,
    explicit nonces, sent raw without waiting for receipts."""

    w3: Web3
    coordinator: CoordinatorClient
    consumer: Any
    accounts: list[LocalAccount]
    nonces: dict[str, int] = field(default_factory=dict)
    _next: int = 0

    @classmethod
    def create(
        cls, w3: Web3, coordinator: CoordinatorClient, consumer: str, keys: Iterable[str]
    ) -> Sender:
        contract = w3.eth.contract(
            address=Web3.to_checksum_address(consumer), abi=load_artifact("ExampleConsumer").abi
        )
        accounts = [Account.from_key(k) for k in keys]
        nonces = {
            a.address: int(w3.eth.get_transaction_count(a.address, "pending")) for a in accounts
        }
        return cls(w3, coordinator, contract, accounts, nonces)

    def sign(self, model_id: str, values: list[int], mode: int) -> bytes:
        account = self.accounts[self._next % len(self.accounts)]
        self._next += 1
        fee = self.coordinator.quote_fee(model_id, mode, CALLBACK_GAS)
        fn = self.consumer.functions.requestPrediction(
            bytes.fromhex(model_id[2:]), values, mode, CALLBACK_GAS
        )
        gas = int(fn.estimate_gas({"from": account.address, "value": fee}) * 1.5)
        tx = fn.build_transaction(
            {
                "from": account.address,
                "value": fee,
                "nonce": self.nonces[account.address],
                "gas": gas,
                "maxFeePerGas": 50 * 10**9,
                "maxPriorityFeePerGas": 10**9,
                "chainId": int(self.w3.eth.chain_id),
            }
        )
        self.nonces[account.address] += 1
        return bytes(account.sign_transaction(tx).raw_transaction)

    def send(self, raw: bytes) -> HexStr:
        return Web3.to_hex(self.w3.eth.send_raw_transaction(raw))

    def resolve(self, hashes: Sequence[HexStr], timeout_s: float = 120) -> list[tuple[int, int]]:
        """(request id, block) of each sent request, once mined."""
        out: list[tuple[int, int]] = []
        for h in hashes:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                h, timeout=timeout_s, poll_latency=0.05
            )
            if receipt["status"] != 1:
                raise RuntimeError(f"request transaction {h} reverted")
            (req,) = self.coordinator.requested_in_receipt(receipt)
            out.append((req.request_id, int(receipt["blockNumber"])))
        return out


@dataclass
class Run:
    """One load run's requests and what became of them."""

    name: str
    block_time: float
    requests: list[tuple[int, int]]  # (request id, request block)
    fulfil_block: dict[int, int]
    rows: dict[int, dict[str, float | None]]  # request id -> stage durations (s) and marks
    clock: dict[int, float]

    def answered(self) -> list[tuple[int, int]]:
        return [(r, b) for r, b in self.requests if r in self.fulfil_block]

    def blocks(self) -> list[int]:
        return [self.fulfil_block[r] - b for r, b in self.answered()]

    def latency_s(self) -> list[float]:
        """Request's block reaching the bench -> fulfilment broadcast, seconds."""
        out = []
        for r, b in self.answered():
            broadcast = self.rows.get(r, {}).get("broadcast")
            if broadcast is not None and b in self.clock:
                out.append(broadcast - self.clock[b])
        return out

    def stage(self, key: str) -> list[float]:
        return [v for row in self.rows.values() if (v := row.get(key)) is not None]


def fulfilments(coordinator: CoordinatorClient, from_block: int) -> dict[int, int]:
    logs = coordinator.contract.events.InferenceFulfilled().get_logs(from_block=from_block)
    return {int(e["args"]["requestId"]): int(e["blockNumber"]) for e in logs}


def wait_answered(
    coordinator: CoordinatorClient, ids: Iterable[int], from_block: int, timeout_s: float
) -> dict[int, int]:
    want = set(ids)
    deadline = time.monotonic() + timeout_s
    done: dict[int, int] = {}
    while time.monotonic() < deadline:
        done = fulfilments(coordinator, from_block)
        if want <= done.keys():
            break
        time.sleep(0.25)
    return {r: b for r, b in done.items() if r in want}


def stage_rows(
    db: Database, fulfil_block: dict[int, int], clock: BlockClock
) -> dict[int, dict[str, Any]]:
    """Per answered request: the stage durations from the node's timestamps (the mined block
    is the fulfilment log's: the confirmer may not have recorded it yet). Rows and transactions
    are read separately (a join with ``InferenceRequest`` would correlate its
    ``fulfilled_block`` column_property away)."""
    wanted = set(fulfil_block)
    with db.session() as s:
        rows = [r for r in s.scalars(select(InferenceRequest)) if r.request_id in wanted]
        tx_ids = [r.fulfil_tx_id for r in rows if r.fulfil_tx_id is not None]
        txs = {t.id: t for t in s.scalars(select(Transaction).where(Transaction.id.in_(tx_ids)))}
        out: dict[int, dict[str, Any]] = {}
        for r in rows:
            tx = txs.get(r.fulfil_tx_id) if r.fulfil_tx_id is not None else None
            seen, queued, inferred = ts(r.seen_at), ts(r.queued_at), ts(r.inferred_at)
            submitted = ts(r.submitted_at)
            broadcast = ts(tx.broadcast_at) if tx is not None else None
            started = inferred - r.inference_s if inferred and r.inference_s is not None else None
            mined = clock.seen.get(fulfil_block[r.request_id])
            block = clock.seen.get(r.block_number)

            def diff(a: float | None, b: float | None) -> float | None:
                return None if a is None or b is None else a - b

            out[r.request_id] = {
                "block_seen": diff(seen, block),
                "seen_queued": diff(queued, seen),
                "queue_wait": diff(started, queued),
                "inference": r.inference_s,
                "inferred_submitted": diff(submitted, inferred),
                "submitted_broadcast": diff(broadcast, submitted),
                "broadcast_mined": diff(mined, broadcast),
                "overhead": (
                    None
                    if broadcast is None or seen is None or r.inference_s is None
                    else broadcast - seen - r.inference_s
                ),
                "broadcast": broadcast,
                "submitted": submitted,
            }
    return out


class ZkFiller:
    """Keeps ``outstanding`` Zk requests unanswered at all times, so the prover stays busy."""

    def __init__(self, sender: Sender, model_id: str, scale: int, outstanding: int = 2) -> None:
        self.sender, self.model_id, self.scale = sender, model_id, scale
        self.outstanding = outstanding
        self.sent: list[int] = []
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zk-filler", daemon=True)
        self._rng = np.random.default_rng(7)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        start = int(self.sender.w3.eth.block_number)
        while not self._stop.is_set():
            done = fulfilments(self.sender.coordinator, start)
            self.answered = sum(1 for r in self.sent if r in done)
            for _ in range(self.outstanding - (len(self.sent) - self.answered)):
                values = [to_fixed(float(v), self.scale) for v in self._rng.uniform(-1, 1, 4)]
                h = self.sender.send(self.sender.sign(self.model_id, values, 1))
                self.sent += [r for r, _ in self.sender.resolve([h])]
            self._stop.wait(0.5)


def plain_values(rng: np.random.Generator) -> list[int]:
    return [to_fixed(float(v), 16) for v in rng.uniform(-1, 1, 4)]


def steady(
    name: str,
    stack: LocalStack,
    sender: Sender,
    clock: BlockClock,
    db: Database,
    model_id: str,
    rate: float,
    duration: float,
    rng: np.random.Generator,
) -> Run:
    count = max(1, round(rate * duration))
    raws = [sender.sign(model_id, plain_values(rng), 0) for _ in range(count)]
    start_block = int(sender.w3.eth.block_number)
    t0 = time.monotonic()
    hashes = []
    for i, raw in enumerate(raws):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        hashes.append(sender.send(raw))
    requests = sender.resolve(hashes)
    done = wait_answered(sender.coordinator, [r for r, _ in requests], start_block, 120)
    bt = stack.block_time or 1.0
    return Run(name, bt, requests, done, stage_rows(db, done, clock), dict(clock.seen))


def burst(
    stack: LocalStack,
    sender: Sender,
    clock: BlockClock,
    db: Database,
    model_id: str,
    size: int,
    rng: np.random.Generator,
) -> Run:
    raws = [sender.sign(model_id, plain_values(rng), 0) for _ in range(size)]
    w3 = sender.w3
    bt = stack.block_time or 1.0
    w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
    try:
        hashes = [sender.send(raw) for raw in raws]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    finally:
        w3.provider.make_request("evm_setIntervalMining", [int(bt)])  # type: ignore[arg-type]
    requests = sender.resolve(hashes)
    blocks = {b for _, b in requests}
    if len(blocks) != 1:
        raise RuntimeError(f"the burst spread over blocks {sorted(blocks)}: raise the gas limit")
    done = wait_answered(sender.coordinator, [r for r, _ in requests], min(blocks), 180)
    return Run("burst 1 s", bt, requests, done, stage_rows(db, done, clock), dict(clock.seen))


def settle(stack: LocalStack, clock: BlockClock) -> None:
    """Mine past the node's finality depth at once (``anvil_mine``) and let two more blocks
    come, so a scenario does not pay for the one before: on each new head the relayer
    re-reads the receipt of every confirmed transaction younger than ``finality_depth``."""
    settings = stack.settings()
    w3 = connect(settings.chain.rpc_url)
    depth = settings.chain.finality_depth
    target = int(w3.eth.block_number) + depth + 1
    w3.provider.make_request("anvil_mine", [hex(depth + 1)])  # type: ignore[arg-type]
    clock.at(target + 2)


def window_ratio(run: Run) -> float:
    """Answers mined / requests mined over the blocks the requests were mined in."""
    first = min(b for _, b in run.requests)
    last = max(b for _, b in run.requests)
    answers = sum(1 for b in run.fulfil_block.values() if first <= b <= last)
    return answers / len(run.requests)


def summary(run: Run) -> dict[str, Any]:
    bt = run.block_time
    blocks, lat, over = run.blocks(), run.latency_s(), run.stage("overhead")
    out: dict[str, Any] = {
        "block_time_s": bt,
        "requests": len(run.requests),
        "answered": len(blocks),
        "blocks_to_callback": {
            "p50": pct(blocks, 50),
            "p99": pct(blocks, 99),
            "max": max(blocks, default=None),
        },
        "latency_block_to_broadcast_s": {"p50": pct(lat, 50), "p99": pct(lat, 99)},
        "overhead_ms": {"p50": pct(over, 50) * 1000, "p99": pct(over, 99) * 1000},
        "overhead_p99_share_of_block": pct(over, 99) / bt,
        "stages_ms": {
            label: {"p50": pct(run.stage(key), 50) * 1000, "p99": pct(run.stage(key), 99) * 1000}
            for label, key in STAGES
        },
    }
    if run.name.startswith("burst"):
        burst_block = run.requests[0][1]
        last = max(run.fulfil_block[r] for r, _ in run.answered())
        span = run.clock[last] - run.clock[burst_block]
        out["blocks_until_all_answered"] = last - burst_block
        out["intake_per_s"] = len(run.requests) / bt
        # The node's own pace: every answer broadcast, counted from the burst's block.
        node_span = max(run.stage("broadcast")) - run.clock[burst_block]
        out["answers_per_s"] = len(blocks) / node_span if node_span > 0 else float("inf")
        out["answer_rate_over_intake_rate"] = out["answers_per_s"] / out["intake_per_s"]
        # The chain's view: answers mined per second from the burst's block to the last.
        out["mined_answers_per_s"] = len(blocks) / span if span > 0 else float("inf")
        out["mined_rate_over_intake_rate"] = bt / span if span > 0 else float("inf")
        # The relayer is busy throughout a burst: the gap between consecutive submissions
        # is its cost per answer (simulate, sign, save, broadcast, plus receipt following).
        sent = sorted(run.stage("submitted"))
        gaps = list(np.diff(sent)) if len(sent) > 1 else []
        out["relayer_gap_between_submissions_ms"] = {
            "p50": pct(gaps, 50) * 1000,
            "p99": pct(gaps, 99) * 1000,
        }
        out["relayer_submissions_per_s"] = (
            (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else float("nan")
        )
    else:
        out["answers_over_requests_in_window"] = window_ratio(run)
    return out


def plain_stack(
    tmp: Path, block_time: float
) -> tuple[LocalStack, CoordinatorClient, Database, str]:
    stack = LocalStack(tmp, block_time=block_time, block_gas_limit=BLOCK_GAS_LIMIT)
    stack.start()
    settings = stack.settings()
    coordinator = CoordinatorClient(connect(settings.chain.rpc_url), settings.coordinator_address())
    db = Database(settings.db.url)
    model_id, _ = register_model(
        db, ArtifactStore(settings.store.path), coordinator, stack.owner, MODEL, 16, 16
    )
    stack.serve(model_id)
    return stack, coordinator, db, model_id


def run_scenarios(args: argparse.Namespace) -> tuple[list[Run], dict[str, Any]]:
    wanted = set(args.scenarios.split(","))
    rng = np.random.default_rng(1)
    runs: list[Run] = []
    extra: dict[str, Any] = {}
    if wanted & {"burst", "steady", "busy"}:
        with tempfile.TemporaryDirectory(prefix="bench-load-1s-") as tmp:
            stack, coordinator, db, model_id = plain_stack(Path(tmp), 1.0)
            try:
                settings = stack.settings()
                consumer = str((settings.deployment() or {})["example_consumer"])
                sender = Sender.create(coordinator.w3, coordinator, consumer, PLAIN_KEYS)
                with BlockClock(settings.chain.rpc_url) as clock:
                    steady("warm-up", stack, sender, clock, db, model_id, 2, 3, rng)
                    settle(stack, clock)
                    if "burst" in wanted:
                        runs.append(burst(stack, sender, clock, db, model_id, args.burst, rng))
                        settle(stack, clock)
                    if wanted & {"steady", "busy"}:
                        runs.append(
                            steady(
                                "steady 1 s",
                                stack,
                                sender,
                                clock,
                                db,
                                model_id,
                                args.rate,
                                args.duration,
                                rng,
                            )
                        )
                    if "busy" in wanted:
                        started = time.monotonic()
                        done = onboarding.onboard(
                            db,
                            ArtifactStore(settings.store.path),
                            coordinator,
                            stack.owner,
                            MODEL,
                            CALIBRATION,
                            onboarding.SrsChoice(dev=True),
                            zk.CircuitParams(),
                        )
                        stack.serve(done.model_id)
                        extra["zk_onboard_s"] = time.monotonic() - started
                        settle(stack, clock)
                        zk_sender = Sender.create(coordinator.w3, coordinator, consumer, [ZK_KEY])
                        filler = ZkFiller(zk_sender, done.model_id, done.manifest.input_scale)
                        filler.start()
                        try:
                            # Let the first proofs start before measuring.
                            time.sleep(3)
                            runs.append(
                                steady(
                                    "busy prover 1 s",
                                    stack,
                                    sender,
                                    clock,
                                    db,
                                    model_id,
                                    args.rate,
                                    args.duration,
                                    rng,
                                )
                            )
                        finally:
                            filler.stop()
                        extra["zk_requests_sent"] = len(filler.sent)
                        extra["zk_requests_answered"] = filler.answered
            finally:
                stack.stop()
    if "fast" in wanted:
        with tempfile.TemporaryDirectory(prefix="bench-load-250ms-") as tmp:
            stack, coordinator, db, model_id = plain_stack(Path(tmp), 0.25)
            try:
                settings = stack.settings()
                consumer = str((settings.deployment() or {})["example_consumer"])
                sender = Sender.create(coordinator.w3, coordinator, consumer, PLAIN_KEYS)
                with BlockClock(settings.chain.rpc_url) as clock:
                    steady("warm-up", stack, sender, clock, db, model_id, 2, 3, rng)
                    settle(stack, clock)
                    runs.append(
                        steady(
                            "steady 250 ms",
                            stack,
                            sender,
                            clock,
                            db,
                            model_id,
                            args.rate,
                            args.duration,
                            rng,
                        )
                    )
            finally:
                stack.stop()
    return runs, extra


def figures(runs: list[Run], sums: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    """(figure, measured, target, met) for the issue's table."""
    out: list[tuple[str, str, str, bool]] = []
    if b := sums.get("burst 1 s"):
        n = b["blocks_until_all_answered"]
        out.append(
            (f"{b['requests']}-request burst: blocks until all answered", str(n), "<= 2", n <= 2)
        )
        r = b["answer_rate_over_intake_rate"]
        out.append(
            (
                "burst: answers/s (broadcast) / requests/s taken in",
                f"{r:.2f} ({b['answers_per_s']:.1f}/s vs {b['intake_per_s']:.0f}/s)",
                ">= 0.8",
                r >= 0.8,
            )
        )
        m = b["mined_rate_over_intake_rate"]
        out.append(
            (
                "burst, chain's view: answers mined/s / requests/s taken in",
                f"{m:.2f} ({b['mined_answers_per_s']:.1f}/s)",
                "(info)",
                m >= 0.8,
            )
        )
    if s := sums.get("steady 1 s"):
        p50, p99 = s["overhead_ms"]["p50"], s["overhead_ms"]["p99"]
        out.append(
            (
                "off-chain overhead p50 / p99 (1 s, steady)",
                f"{p50:.1f} / {p99:.1f} ms",
                "<= 20 / <= 60 ms",
                p50 <= 20 and p99 <= 60,
            )
        )
        w = s["answers_over_requests_in_window"]
        out.append(
            ("steady: answers / requests mined in the window", f"{w:.2f}", ">= 0.8", w >= 0.8)
        )
    if f := sums.get("steady 250 ms"):
        p99b, share = f["blocks_to_callback"]["p99"], f["overhead_p99_share_of_block"]
        out.append(
            (
                "250 ms blocks: blocks to callback p99; overhead p99 / block",
                f"{p99b:.1f}; {share:.0%}",
                "<= 2; <= 25 %",
                p99b <= 2 and share <= 0.25,
            )
        )
    if (busy := sums.get("busy prover 1 s")) and (idle := sums.get("steady 1 s")):
        ratio = (
            busy["latency_block_to_broadcast_s"]["p99"]
            / idle["latency_block_to_broadcast_s"]["p99"]
        )
        out.append(
            (
                "plain p99 prover busy / idle (block -> broadcast)",
                f"{ratio:.2f}",
                "<= 1.2",
                ratio <= 1.2,
            )
        )
    return out


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0][0]
    every = [v * 1000 for run in runs for v in run.latency_s() if v > 0]
    if every:
        bins = np.geomspace(min(every), max(every), 40)
        for run in runs:
            lat = [v * 1000 for v in run.latency_s() if v > 0]
            if lat:
                ax.hist(lat, bins=bins, alpha=0.5, label=run.name)
        ax.set_xscale("log")
    ax.set(title="request block seen -> fulfilment broadcast", xlabel="ms (log)", ylabel="requests")
    ax.legend()
    ax = axes[0][1]
    for run in runs:
        blocks = run.blocks()
        if blocks:
            edges = np.arange(0, max(blocks) + 2) - 0.5
            ax.hist(blocks, bins=edges, alpha=0.5, label=run.name)
    ax.set(title="blocks from request to callback", xlabel="blocks", ylabel="requests")
    ax.legend()
    ax = axes[1][0]
    for run in runs:
        if not run.requests:
            continue
        t0 = run.clock[min(b for _, b in run.requests)]
        req_t = sorted(run.clock[b] - t0 for _, b in run.requests if b in run.clock)
        ans_t = sorted(run.clock[b] - t0 for b in run.fulfil_block.values() if b in run.clock)
        (line,) = ax.step(
            ans_t, np.arange(1, len(ans_t) + 1), where="post", label=f"{run.name}: answers"
        )
        ax.step(
            req_t,
            np.arange(1, len(req_t) + 1),
            where="post",
            linestyle=":",
            color=line.get_color(),
            label=f"{run.name}: requests mined",
        )
    ax.set(
        title="cumulative requests mined and answers mined",
        xlabel="s from first request block",
        ylabel="count",
    )
    ax.legend(fontsize=7)
    ax = axes[1][1]
    labels = [label for label, _ in STAGES]
    y = np.arange(len(labels))
    h = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        p99 = [pct(run.stage(key), 99) * 1000 for _, key in STAGES]
        p50 = [pct(run.stage(key), 50) * 1000 for _, key in STAGES]
        bars = ax.barh(y + i * h, p99, height=h, alpha=0.4, label=f"{run.name} p99")
        ax.barh(y + i * h, p50, height=h, color=bars.patches[0].get_facecolor(), alpha=1.0)
    ax.set_yticks(y + 0.4 - h / 2, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(title="where the time goes: p50 (solid) and p99 (light)", xlabel="ms (log)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4.0, help="steady requests per second")
    parser.add_argument("--duration", type=float, default=15.0, help="steady seconds")
    parser.add_argument("--scenarios", default="burst,steady,busy,fast")
    parser.add_argument("--plot", type=Path, default=ROOT / "var" / "bench-load.png")
    args = parser.parse_args()
    started = time.monotonic()
    runs, extra = run_scenarios(args)
    sums = {run.name: summary(run) for run in runs}
    head = ("scenario", "req", "ans", "blocks p50/p99/max", "latency p50/p99 ms", "overhead")
    print("\n{:18} {:>4} {:>4}  {:>20}  {:>20}  {:>18}".format(*head))
    for name, s in sums.items():
        b, lat, o = s["blocks_to_callback"], s["latency_block_to_broadcast_s"], s["overhead_ms"]
        blocks = f"{b['p50']:.0f} / {b['p99']:.1f} / {b['max']}"
        latency = f"{lat['p50'] * 1000:.0f} / {lat['p99'] * 1000:.0f}"
        overhead = f"{o['p50']:.1f} / {o['p99']:.1f} ms"
        print(
            f"{name:18} {s['requests']:>4} {s['answered']:>4}  {blocks:>20}  {latency:>20}"
            f"  {overhead:>18}"
        )
    print("\nwhere the time goes (ms, p50 / p99):")
    print(f"{'stage':26}" + "".join(f"{name:>22}" for name in sums))
    for label, _ in STAGES:
        cells = "".join(
            f"{s['stages_ms'][label]['p50']:>10.1f} /{s['stages_ms'][label]['p99']:>9.1f}"
            for s in sums.values()
        )
        print(f"{label:26}{cells}")
    if b := sums.get("burst 1 s"):
        gap = b["relayer_gap_between_submissions_ms"]
        print(
            f"relayer during the burst: one submission every {gap['p50']:.0f} ms p50 "
            f"({gap['p99']:.0f} ms p99), {b['relayer_submissions_per_s']:.1f} answers/s"
        )
    print("\nfigures (issue targets):")
    table = figures(runs, sums)
    for what, got, target, met in table:
        print(f"  {what:62} {got:>28}  target {target:>16}  {'met' if met else 'NOT MET'}")
    plot(runs, args.plot)
    result = {
        "scenarios": sums,
        "figures": [{"figure": w, "measured": g, "target": t, "met": m} for w, g, t, m in table],
        **extra,
        "wall_s": round(time.monotonic() - started, 1),
        "plot": str(args.plot),
    }
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
