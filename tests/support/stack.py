"""The ONE test stack: an :class:`oracle.dev.stack.LocalStack` (anvil with automine,
contracts deployed with a short request timeout, the node registered, the schema migrated,
an inference worker process) on the test's own database and the session's redis-server,
plus the example model registered and the conveniences test bodies use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from web3 import Web3

from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.deploy import CoordinatorParams, Deployment
from oracle.db import Database
from oracle.dev.keys import REQUESTER_KEY
from oracle.dev.processes import Anvil, OracleProcess
from oracle.dev.requester import Requester
from oracle.dev.stack import LocalStack
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.settings import Settings
from tests.support import db as dbq
from tests.support.models import EXAMPLE_MODEL
from tests.support.wait import wait_for

# Requests live this many blocks: every request and answer mines one under automine, so a
# burst needs room; a test about expiry asks for less with @pytest.mark.request_timeout_blocks.
REQUEST_TIMEOUT_BLOCKS = 100
# The node polls the chain and receipts this often: fast enough that a test waits little, slow
# enough that four idle nodes (one per xdist worker) do not eat the CPU the tests need.
POLL_INTERVAL_S = 0.1


class Stack:
    """A started :class:`LocalStack` without a node process (tests run the node in-process
    with ``running_node``, or start ``oracle node`` with :meth:`start_node_process`)."""

    def __init__(self, local: LocalStack) -> None:
        assert local.anvil is not None and local.deployment is not None
        self.local = local
        self.anvil: Anvil = local.anvil
        self.deployment: Deployment = local.deployment
        self.tmp: Path = local.workdir
        self.w3: Web3 = local.anvil.w3()
        self.settings: Settings = local.settings()
        self.db = Database(self.settings.db.url)
        self.coordinator = CoordinatorClient(connect(self.anvil.url), self.deployment.coordinator)
        self.requester = Requester.from_settings(self.settings, key=REQUESTER_KEY)
        self.model_id, _ = register_model(
            self.db,
            ArtifactStore(self.settings.store.path),
            self.coordinator,
            local.owner,
            EXAMPLE_MODEL,
            16,
            16,
        )
        local.serve(self.model_id)  # the node serves it (nodes started later see it served)
        self.extra_processes: list[OracleProcess] = []  # stopped with the stack

    @property
    def worker(self) -> OracleProcess:
        assert self.local.worker is not None, "this stack runs no inference worker"
        return self.local.worker

    @property
    def worker_env(self) -> dict[str, str]:
        """Environment for ``oracle`` child processes on this stack."""
        return self.local.env()

    def start_worker(self, name: str, **extra_env: str) -> OracleProcess:
        """Another inference worker process (the caller stops it)."""
        proc = self.local.start_worker_process(name, extra_env)
        self.extra_processes.append(proc)
        return proc

    def start_prover(self) -> OracleProcess:
        """A prover worker process (the caller stops it)."""
        proc = self.local.start_prover_process()
        self.extra_processes.append(proc)
        return proc

    def start_node_process(self, log_name: str, **extra_env: str) -> OracleProcess:
        """``oracle node`` as a child process on this stack, not waited on (it may be
        meant to die early); no status endpoint."""
        env = {**self.local.env(), "ORACLE_METRICS__PORT": "0", **extra_env}
        proc = OracleProcess("node", ["node"], env, self.tmp / f"{log_name}.log")
        self.extra_processes.append(proc)
        proc.start()
        return proc

    def request(
        self,
        values: list[int],
        gas: int = 300_000,
        mode: int = 0,
        consumer: Any = None,
        model_id: str | None = None,
    ) -> int:
        requester = (
            self.requester
            if consumer is None
            else Requester(self.w3, self.coordinator, consumer, self.requester.account)
        )
        request_id, _ = requester.submit(model_id or self.model_id, values, mode, gas)
        return request_id

    def wait_result(self, request_id: int, timeout: float = 30.0) -> tuple[bool, list[int], bytes]:
        result: tuple[bool, list[int], bytes] = wait_for(
            lambda: (r := self.requester.result(request_id))[0] and r,
            timeout,
            f"callback for request {request_id}",
        )
        return result

    def row_status(self, request_id: int) -> str | None:
        return dbq.row_status(self, request_id)


@contextmanager
def started_stack(
    tmp: Path,
    db_url: str,
    redis_url: str,
    worker: bool = True,
    request_timeout_blocks: int = REQUEST_TIMEOUT_BLOCKS,
    params: CoordinatorParams | None = None,
) -> Iterator[Stack]:
    """A started :class:`Stack` in ``tmp`` (Coordinator ``params``, else the defaults with
    ``request_timeout_blocks``); everything it started is stopped after."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # the session's redis-server: no queue left over from another test
    client.close()
    local = LocalStack(
        tmp,
        block_time=None,
        db_url=db_url,
        redis_url=redis_url,
        coordinator_params=params
        or CoordinatorParams(request_timeout_blocks=request_timeout_blocks),
        start_worker=worker,
        start_prover=False,
        start_node=False,
        poll_interval_s=POLL_INTERVAL_S,
        config_overrides={"relayer": {"idle_wait_s": 0.2}, "metrics": {"port": 0}},
    )
    local.start()
    stack: Stack | None = None
    try:
        stack = Stack(local)
        yield stack
    finally:
        # Killed, not stopped: a worker's warm shutdown costs seconds and proves nothing here.
        for proc in (*(stack.extra_processes if stack else ()), local.worker):
            if proc is not None:
                proc.kill()
                proc.stop()  # closes its log
        if stack is not None:
            stack.db.dispose()
        local.stop()
