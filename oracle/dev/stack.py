"""The local stack: a whole oracle on one machine, for `oracle up`, the demo, the bench
and the integration tests.

anvil (a real local chain) -> contracts deployed -> node registered and staked ->
redis-server -> SQLite migrated -> an inference worker and a prover worker -> the node
(-> optionally a watcher, ``oracle watch``, with its own key). A TEST-ONLY cheating node
(:mod:`oracle.dev.cheater`) can be started on it with :meth:`start_cheater`.
A model registered on the running stack is served by its node through :meth:`serve`
(a node declares the models it holds when it starts; this one already has).
Keys are anvil's public development keys (see ``oracle.dev.keys``).

The defaults are what `oracle up` runs. The tests pass keyword arguments for their own
database (SQLite or PostgreSQL), a redis-server they already run, a short request timeout,
automine, and which processes to start (most run the node in-process).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml
from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    Deployment,
    deploy_stack,
    register_node,
    serve_model,
)
from oracle.db import Database
from oracle.dev.keys import DEPLOYER_KEY, NODE_KEY, WATCHER_KEY
from oracle.dev.processes import Anvil, OracleProcess, RedisServer, file_exists, free_port
from oracle.settings import Settings, load_settings

if TYPE_CHECKING:
    from oracle.dev.cheater import Cheater


class LocalStack:
    """Start with :meth:`start` (or ``with``); everything started is stopped by :meth:`stop`."""

    def __init__(
        self,
        workdir: Path,
        block_time: float | None = 1.0,
        anvil_port: int | None = None,
        confirmations: int = 0,
        status_port: int | None = None,
        worker_concurrency: int = 1,
        *,
        db_url: str | None = None,
        redis_url: str | None = None,
        coordinator_params: CoordinatorParams | None = None,
        start_worker: bool = True,
        start_prover: bool = True,
        start_node: bool = True,
        start_watcher: bool = False,
        poll_interval_s: float = 0.1,
        config_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        block_gas_limit: int | None = None,
    ) -> None:
        """``db_url`` defaults to SQLite in ``workdir``; with ``redis_url`` no redis-server
        is started (the caller runs one); ``block_time`` None is automine;
        ``poll_interval_s`` is how often the node polls the chain and receipts;
        ``config_overrides`` are merged, per section, into the config file written;
        ``start_watcher`` also runs ``oracle watch`` (dev ``WATCHER_KEY``);
        ``block_gas_limit`` overrides anvil's (the load bench mines 200 requests in a block)."""
        self.workdir = workdir.resolve()
        self.block_time = block_time
        self.anvil_port = anvil_port
        self.confirmations = confirmations
        self.status_port = status_port or free_port()
        self.worker_concurrency = worker_concurrency
        self.db_url = db_url or f"sqlite:///{self.workdir / 'oracle.db'}"
        self.external_redis_url = redis_url
        self.coordinator_params = coordinator_params or CoordinatorParams()
        self._start_worker = start_worker
        self._start_prover = start_prover
        self._start_node = start_node
        self._start_watcher = start_watcher
        self.poll_interval_s = poll_interval_s
        self.config_overrides = dict(config_overrides or {})
        self.block_gas_limit = block_gas_limit
        self.anvil: Anvil | None = None
        self.redis: RedisServer | None = None
        self.worker: OracleProcess | None = None
        self.prover: OracleProcess | None = None
        self.node: OracleProcess | None = None
        self.watcher: OracleProcess | None = None
        self.cheater: Cheater | None = None
        self._cheater_thread: threading.Thread | None = None
        self.deployment: Deployment | None = None
        self.owner: LocalAccount = Account.from_key(DEPLOYER_KEY)
        self.node_account: LocalAccount = Account.from_key(NODE_KEY)

    @property
    def config_path(self) -> Path:
        return self.workdir / "oracle.yaml"

    @property
    def deployment_path(self) -> Path:
        return self.workdir / "deployment.json"

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        compile_contracts()
        self.anvil = Anvil(
            self.workdir / "anvil.log",
            self.anvil_port,
            self.block_time,
            gas_limit=self.block_gas_limit,
        )
        self.anvil.start()
        w3 = self.anvil.w3()
        self.deployment = deploy_stack(w3, self.owner, self.anvil.url, self.coordinator_params)
        self.deployment.write(self.deployment_path)
        register_node(w3, self.node_account, self.deployment.coordinator, 10 * ETHER)
        if self.external_redis_url is None:
            self.redis = RedisServer(self.workdir / "redis")
            self.redis.start()
        self._write_config()
        Database(self.settings().db.url).upgrade()
        if self._start_worker:
            self.worker = self.start_worker_process()
        if self._start_prover:
            self.prover = self.start_prover_process()
        if self._start_node:
            self.node = OracleProcess(
                "node",
                ["--config", str(self.config_path), "node"],
                self.env(),
                self.workdir / "node.log",
                ready=self._node_healthy,
            )
            self.node.start()
        if self._start_watcher:
            self.watcher = self.start_watcher_process()

    def start_worker_process(
        self, name: str = "worker", extra_env: Mapping[str, str] | None = None
    ) -> OracleProcess:
        """An inference worker (``oracle worker``) on this stack, started and consuming;
        ``name`` names its log and ready files."""
        ready = self.workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        worker = OracleProcess(
            f"inference {name}",
            [
                "--config",
                str(self.config_path),
                "worker",
                "--ready-file",
                str(ready),
                "--concurrency",
                str(self.worker_concurrency),
            ],
            {**self.env(), **(extra_env or {})},
            self.workdir / f"{name}.log",
            ready=file_exists(ready),
        )
        worker.start()
        return worker

    def start_prover_process(self) -> OracleProcess:
        """A prover worker (``oracle worker --queue proof``) on this stack, started."""
        prover_ready = self.workdir / "prover.ready"
        prover_ready.unlink(missing_ok=True)
        prover = OracleProcess(
            "prover worker",
            [
                "--config",
                str(self.config_path),
                "worker",
                "--queue",
                "proof",
                "--ready-file",
                str(prover_ready),
            ],
            self.env(),
            self.workdir / "prover.log",
            ready=file_exists(prover_ready),
        )
        prover.start()
        return prover

    def start_watcher_process(self, extra_env: Mapping[str, str] | None = None) -> OracleProcess:
        """``oracle watch`` on this stack with the dev watcher key (every model whose circuit
        the stack's store holds); ``extra_env`` adds settings (``ORACLE_WATCHER__...``)."""
        env = {
            **self.env(),
            "ORACLE_WATCHER__ENABLED": "true",
            "ORACLE_WATCHER__SIGNER__PRIVATE_KEY": WATCHER_KEY,
            "ORACLE_WATCHER__POLL_INTERVAL_S": str(self.poll_interval_s),
            "ORACLE_WATCHER__WORKDIR": str(self.workdir / "watcher"),
            **(extra_env or {}),
        }
        watcher = OracleProcess(
            "watcher",
            ["--config", str(self.config_path), "watch"],
            env,
            self.workdir / "watcher.log",
        )
        watcher.start()
        return watcher

    def start_cheater(self, model_ids: Sequence[str], stake: int = 10 * ETHER) -> Cheater:
        """TEST ONLY: a node (dev ``CHEATER_KEY``) that stakes, serves ``model_ids`` and
        answers the Optimistic requests assigned to it with wrong outputs, in a thread of
        this process. Stopped with the stack."""
        from oracle.chain.client import CoordinatorClient
        from oracle.dev.cheater import Cheater
        from oracle.models.store import ArtifactStore
        from oracle.watcher.checker import CircuitChecker

        if self.anvil is None or self.deployment is None:
            raise RuntimeError("start the stack first")
        if self.cheater is not None:
            raise RuntimeError("the cheater is already running")
        client = CoordinatorClient(self.anvil.w3(), self.deployment.coordinator)
        store = ArtifactStore(self.workdir / "models")
        checker = CircuitChecker(client, store, self.workdir / "cheater")
        cheater = Cheater(client, model_ids, checker=checker, poll_interval_s=self.poll_interval_s)
        cheater.setup(stake)
        cheater.start()
        self._cheater_thread = threading.Thread(target=cheater.run, name="cheater", daemon=True)
        self._cheater_thread.start()
        self.cheater = cheater
        return cheater

    def serve(self, model_id: str) -> None:
        """Declare that the stack's node serves ``model_id`` (registered after it started),
        so requests for it can be assigned to the node."""
        if self.anvil is None or self.deployment is None:
            raise RuntimeError("start the stack first")
        serve_model(self.anvil.w3(), self.node_account, self.deployment.coordinator, model_id)

    def _node_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.status_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.loads(resp.read())["healthy"])

    @property
    def redis_url(self) -> str:
        if self.external_redis_url is not None:
            return self.external_redis_url
        if self.redis is None:
            raise RuntimeError("start redis first")
        return self.redis.url(0)

    def _write_config(self) -> None:
        if self.anvil is None:
            raise RuntimeError("start anvil first")
        config: dict[str, Any] = {
            "chain": {
                "rpc_url": self.anvil.url,
                "deployment_file": str(self.deployment_path),
                "confirmations": self.confirmations,
                "poll_interval_s": self.poll_interval_s,
            },
            "db": {"url": self.db_url},
            "redis": {"url": self.redis_url},
            "store": {"path": str(self.workdir / "models")},
            "metrics": {"port": self.status_port},
            "relayer": {"receipt_poll_s": self.poll_interval_s},
        }
        for section, values in self.config_overrides.items():
            config[section] = {**config.get(section, {}), **values}
        self.config_path.write_text(
            "# Written by `oracle up` for the local stack. The signer key is not here: it is\n"
            "# passed in the environment (anvil's public development key).\n"
            + yaml.safe_dump(config, sort_keys=False)
        )

    def env(self) -> dict[str, str]:
        """Environment for child processes: the config file and the DEV signer key."""
        return {"ORACLE_CONFIG": str(self.config_path), "ORACLE_SIGNER__PRIVATE_KEY": NODE_KEY}

    def settings(self) -> Settings:
        return load_settings(self.config_path, signer={"private_key": NODE_KEY})

    def stop(self) -> None:
        if self.cheater is not None:
            self.cheater.stop()
            if self._cheater_thread is not None:
                self._cheater_thread.join(timeout=10)
        for proc in (self.watcher, self.node, self.prover, self.worker, self.redis, self.anvil):
            if proc is not None:
                proc.stop()
