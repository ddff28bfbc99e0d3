"""Process faults: redis-server restarted and inference workers killed under load."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from oracle.dev.processes import RedisServer
from tests.support import db
from tests.support.chain import burst
from tests.support.checks import answered_exactly_once
from tests.support.node import start_node
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.faults]


# ~35 s per database: `make faults` only
@pytest.mark.slow_fault
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
    stack.worker.stop()  # replace the fixture's worker with one whose model kills it
    poisoned = stack.start_worker("poison-worker", ORACLE_CRASH_AT="worker.inference")
    node = start_node(stack, confirmations=0)
    try:
        [request_id] = burst(stack, 1)
        _, output, err = stack.wait_result(request_id, timeout=120)
        assert output == []
        assert err.startswith(b"model failed: gave up after")
        final = db.row(stack, request_id)
        assert final is not None
        assert (
            final.attempts == stack.settings.worker.max_attempts + 1
        )  # each crash was one attempt
        assert poisoned.alive()  # the worker's main process survived its children dying
    finally:
        node.stop()
        poisoned.stop()
