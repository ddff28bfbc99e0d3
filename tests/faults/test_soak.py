"""Soak: a few hundred requests with a fault every few seconds, then the books are checked.

Faults, in turn: an inference worker's process killed, a reorg of 1 or 2 blocks (within
the confirmation depth), redis-server killed and restarted, the mempool dropped, the node
stopped and started again. At the end: every canonical request answered exactly once,
the database equal to the chain, no work left anywhere, no secret in any log.

    ORACLE_SOAK_REQUESTS=300 .venv/bin/pytest -q tests/faults/test_soak.py -k sqlite -s
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from oracle.db import InferenceRequest, Transaction
from oracle.dev.keys import NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import RedisServer
from oracle.paths import ROOT
from oracle.types import RequestStatus, TxStatus
from tests.support import db
from tests.support.chain import logs
from tests.support.node import new_node
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.soak]

REQUESTS = int(os.environ.get("ORACLE_SOAK_REQUESTS", "300"))
PACE_S = 0.4  # one request every PACE_S seconds: ~2 minutes for 300
FAULT_EVERY_S = 3.0
CONFIRMATIONS = 2
SEND_ATTEMPTS = 3  # per request; the soak fails unless every planned request was sent


def rpc(stack: Stack, method: str, params: list[Any] | None = None) -> Any:
    return stack.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]


class Soak:
    def __init__(self, stack: Stack, redis_server: RedisServer) -> None:
        self.stack = stack
        self.redis_server = redis_server
        self.settings = stack.settings.model_copy(
            update={
                "chain": stack.settings.chain.model_copy(
                    update={"confirmations": CONFIRMATIONS, "finality_depth": 16}
                ),
                "worker": stack.settings.worker.model_copy(update={"requeue_after_s": 5.0}),
                "relayer": stack.settings.relayer.model_copy(
                    update={"rebroadcast_after_s": 2.0, "bump_after_blocks": 4}
                ),
            }
        )
        self.node = new_node(self.settings)
        self.faults: Counter[str] = Counter()

    def kill_worker(self) -> None:
        assert self.stack.worker.proc is not None
        pid = self.stack.worker.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        for child in children.read_text().split() if children.exists() else []:
            try:
                os.kill(int(child), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reorg(self, depth: int) -> None:
        assert "error" not in rpc(self.stack, "anvil_reorg", [depth, []])

    def restart_redis(self) -> None:
        self.redis_server.kill()
        time.sleep(0.5)
        restarted = RedisServer(self.redis_server.workdir, port=self.redis_server.port)
        restarted.start()
        self.redis_server.proc = restarted.proc

    def drop_mempool(self) -> None:
        rpc(self.stack, "anvil_dropAllTransactions")

    def restart_node(self) -> None:
        self.node.stop()
        self.node = new_node(self.settings)
        self.node.start()

    def schedule(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("worker killed", self.kill_worker),
            ("reorg depth 1", lambda: self.reorg(1)),
            ("redis-server restarted", self.restart_redis),
            ("reorg depth 2", lambda: self.reorg(2)),
            ("mempool dropped", self.drop_mempool),
            ("node restarted", self.restart_node),
        ]


def test_soak_with_faults_every_few_seconds(
    stack: Stack, redis_server: RedisServer, capfd: pytest.CaptureFixture[str]
) -> None:
    soak = Soak(stack, redis_server)
    soak.node.start()
    schedule = soak.schedule()
    started = time.monotonic()
    sent = 0
    send_errors: list[str] = []
    try:
        last_fault = time.monotonic()
        for i in range(REQUESTS):
            time.sleep(PACE_S)
            values = [(i % 16) << 12, -((i % 7) << 11), 1 << 13, (i % 3) << 10]
            for _attempt in range(SEND_ATTEMPTS):  # a send can meet a fault mid-flight
                try:
                    stack.request(values)
                except Exception as e:
                    send_errors.append(f"request {i}: {e!r}"[:300])
                else:
                    sent += 1
                    break
            if time.monotonic() - last_fault >= FAULT_EVERY_S:
                name, inject = schedule[sum(soak.faults.values()) % len(schedule)]
                inject()
                soak.faults[name] += 1
                last_fault = time.monotonic()

        # Quiet period: blocks keep coming so confirmations advance; everything settles.
        def settled() -> bool:
            rpc(stack, "evm_mine")
            requested = logs(stack, "InferenceRequested")
            fulfilled = logs(stack, "InferenceFulfilled")
            with stack.db.session() as s:
                busy = s.scalar(
                    select(InferenceRequest.id).where(
                        InferenceRequest.status.in_(
                            (
                                RequestStatus.SEEN.value,
                                RequestStatus.QUEUED.value,
                                RequestStatus.INFERRED.value,
                                RequestStatus.SUBMITTED.value,
                            )
                        )
                    )
                )
            return set(requested) <= set(fulfilled) and busy is None

        wait_for(settled, 240, "every canonical request to be answered", interval=0.5)
    finally:
        soak.node.stop()
    elapsed = time.monotonic() - started
    # A soak that sent less than it planned tested less than it says.
    assert sent == REQUESTS, (
        f"sent {sent} of {REQUESTS} planned requests; send errors: {send_errors[-5:]}"
    )

    requested = logs(stack, "InferenceRequested")
    fulfilled = logs(stack, "InferenceFulfilled")
    # Every canonical request answered exactly once, and nothing else answered.
    assert set(fulfilled) == set(requested)
    assert all(len(blocks) == 1 for blocks in fulfilled.values()), fulfilled
    # The database equals the chain.
    with stack.db.session() as s:
        rows = {r.request_id: r for r in s.scalars(select(InferenceRequest))}
        tx_statuses = set(s.scalars(select(Transaction.status)))
        for r in rows.values():
            s.expunge(r)
    live = {rid: r for rid, r in rows.items() if r.status != RequestStatus.REORGED.value}
    assert set(live) == set(requested)
    for rid, r in live.items():
        assert r.block_number == requested[rid][0], rid
        assert r.status in (RequestStatus.CONFIRMED.value, RequestStatus.ERRORED.value), r.status
        assert db.fulfilled_block(stack, r) == fulfilled[rid][0], rid
    # No work left anywhere.
    assert tx_statuses <= {
        TxStatus.CONFIRMED.value,
        TxStatus.REVERTED.value,
        TxStatus.DROPPED.value,
    }, tx_statuses
    broker = redis.Redis.from_url(stack.settings.redis.url)
    assert broker.llen("inference") == 0
    broker.close()
    # No secret in any log: the node's own output and every process log.
    output = capfd.readouterr()
    texts = [output.out, output.err]
    texts += [p.read_text(errors="replace") for p in stack.tmp.rglob("*.log")]
    for key in (NODE_KEY, REQUESTER_KEY):
        secret = key.lower().removeprefix("0x")
        assert not any(secret in text.lower() for text in texts), "a private key was logged"

    summary = {
        "requests_sent": sent,
        "canonical_requests": len(requested),
        "lost_with_reorged_blocks": sent - len(requested),
        "reorged_rows": len(rows) - len(live),
        "answered_exactly_once": len(fulfilled),
        "faults": dict(soak.faults),
        "seconds": round(elapsed, 1),
    }
    out = ROOT / "var" / f"soak-{stack.settings.db.url.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
