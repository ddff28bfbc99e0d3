"""Process faults: redis-server restarted and inference workers killed under load."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import exists, func, select

from oracle.db import InferenceRequest, Transaction
from oracle.dev.keys import REQUESTER_KEY
from oracle.dev.processes import RedisServer
from oracle.types import Mode
from tests.conftest import Stack, wait_for
from tests.faults.chain import fulfilled_events, start_node

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GAS = 300_000


def burst(stack: Stack, n: int) -> list[int]:
    """Send ``n`` requests back to back (automine: one block each); return their ids."""
    w3 = stack.w3
    account = Account.from_key(REQUESTER_KEY)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    fee = stack.coordinator.quote_fee(stack.model_id, Mode.NONE, GAS)
    first = int(stack.coordinator.contract.functions.nextRequestId().call())
    for i in range(n):
        values = [(i + 1) << 12, -(i << 11), 1 << 13, 0]
        tx = stack.requester.consumer.functions.requestPrediction(
            bytes.fromhex(stack.model_id[2:]), values, int(Mode.NONE), GAS
        ).build_transaction(
            {
                "from": account.address,
                "value": fee,
                "nonce": nonce + i,
                "gas": 400_000,
                "chainId": w3.eth.chain_id,
            }
        )
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return list(range(first, first + n))


def answered_exactly_once(stack: Stack, ids: list[int]) -> None:
    def all_answered() -> bool:
        return all(stack.requester.result(i)[0] for i in ids)

    wait_for(all_answered, 150, f"all of {len(ids)} requests to be answered", interval=0.5)
    time.sleep(1.0)  # give a duplicate fulfilment time to show up before counting
    for request_id in ids:
        assert len(fulfilled_events(stack, request_id)) == 1, request_id
    with stack.db.session() as s:
        per_row = dict(
            s.execute(
                select(InferenceRequest.request_id, func.count(Transaction.id))
                .join(Transaction, Transaction.id == InferenceRequest.fulfil_tx_id)
                .group_by(InferenceRequest.request_id)
            ).all()
        )
        unanswered = s.scalar(  # a tx no request points at: a second signature
            select(func.count(Transaction.id)).where(
                ~exists().where(InferenceRequest.fulfil_tx_id == Transaction.id)
            )
        )
    assert all(per_row.get(i) == 1 for i in ids), per_row  # one transaction per request
    assert unanswered == 0


def test_redis_restart_loses_no_request(stack: Stack, redis_server: RedisServer) -> None:
    node = start_node(stack, confirmations=0)
    try:
        before = burst(stack, 3)
        answered_exactly_once(stack, before)
        redis_server.kill()  # a crash: in-flight messages may be lost
        during = burst(stack, 5)
        time.sleep(2.0)  # requests land on chain while the broker is down
        restarted = RedisServer(redis_server.workdir, port=redis_server.port)
        restarted.start()
        redis_server.proc = restarted.proc  # the session fixture stops the live process
        answered_exactly_once(stack, before + during)
    finally:
        node.stop()


def _pool_children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_inference_workers_killed_under_load_redo_each_job_once(stack: Stack) -> None:
    node: Any = start_node(stack, confirmations=0)
    try:
        ids = burst(stack, 12)
        assert stack.worker.proc is not None
        kills = 0
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and kills < 4:
            for child in _pool_children(stack.worker.proc.pid):
                try:
                    os.kill(child, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.4)
        assert kills >= 2
        answered_exactly_once(stack, ids)
    finally:
        node.stop()


def test_poison_request_that_kills_its_worker_is_capped_and_answered_with_an_error(
    stack: Stack,
) -> None:
    from oracle.dev.processes import OracleProcess, file_exists

    stack.worker.stop()  # replace the fixture's worker with one whose model kills it
    ready = stack.tmp / "poison-worker.ready"
    poisoned = OracleProcess(
        "poisoned worker",
        ["worker", "--ready-file", str(ready)],
        {**stack.worker_env, "ORACLE_CRASH_AT": "worker.inference"},
        stack.tmp / "poison-worker.log",
        ready=file_exists(ready),
    )
    poisoned.start()
    node = start_node(stack, confirmations=0)
    try:
        [request_id] = burst(stack, 1)
        _, output, err = stack.wait_result(request_id, timeout=120)
        assert output == []
        assert err.startswith(b"model failed: gave up after")
        with stack.db.session() as s:
            attempts = s.scalar(
                select(InferenceRequest.attempts).where(InferenceRequest.request_id == request_id)
            )
        assert attempts == stack.settings.worker.max_attempts + 1  # each crash was one attempt
        assert poisoned.alive()  # the worker's main process survived its children dying
    finally:
        node.stop()
        poisoned.stop()
