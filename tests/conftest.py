"""Shared fixtures: real redis-server, real PostgreSQL cluster, real anvil, real workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import ETHER, CoordinatorParams, Deployment, deploy_stack, register_node
from oracle.db import Database
from oracle.dev.keys import ANVIL_DEV_KEYS, NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import Anvil, OracleProcess, RedisServer, file_exists, free_port
from oracle.dev.requester import Requester
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from oracle.settings import Settings, load_settings

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"


def wait_for(
    check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.05
) -> Any:
    """Poll observable state until ``check`` returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session", autouse=True)
def _contracts() -> None:
    compile_contracts()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def _pg_bin(name: str) -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"PostgreSQL's {name} is not installed (make test installs it)")


@dataclass
class PostgresCluster:
    port: int
    socket_dir: Path

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.socket_dir}&port={self.port}"

    def admin_dsn(self, db: str) -> str:
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={db}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Directly under /tmp: pytest's own temp dirs are private to root, and a root run
    # must hand the cluster to the postgres user.
    base = Path(tempfile.mkdtemp(prefix="oracle-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [
            *as_user,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "pg.log"),
            "-w",
            "-o",
            f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    yield PostgresCluster(port, sock)
    subprocess.run(
        [*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        check=False,
        capture_output=True,
    )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oracle.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    node = Anvil(tmp_path / "anvil.log")
    node.start()
    yield node
    node.stop()


@dataclass
class Stack:
    """A deployed Coordinator, a migrated database, a worker process, and (optionally) a node."""

    anvil: Anvil
    w3: Web3
    deployment: Deployment
    settings: Settings
    db: Database
    coordinator: CoordinatorClient
    requester: Requester
    model_id: str
    worker: OracleProcess
    tmp: Path
    worker_env: dict[str, str]

    def start_node_process(self, log_name: str, **extra_env: str) -> OracleProcess:
        """``oracle node`` as a child process on this stack (configured by environment)."""
        env = {
            "ORACLE_CONFIG": str(self.tmp / "empty.yaml"),
            "ORACLE_CHAIN__RPC_URL": self.anvil.url,
            "ORACLE_CHAIN__DEPLOYMENT_FILE": str(self.tmp / "deployment.json"),
            "ORACLE_CHAIN__CONFIRMATIONS": "0",
            "ORACLE_CHAIN__POLL_INTERVAL_S": "0.05",
            "ORACLE_DB__URL": self.settings.db.url,
            "ORACLE_REDIS__URL": self.settings.redis.url,
            "ORACLE_STORE__PATH": str(self.settings.store.path),
            "ORACLE_METRICS__PORT": "0",
            "ORACLE_SIGNER__PRIVATE_KEY": NODE_KEY,  # anvil's public development key
            **extra_env,
        }
        proc = OracleProcess("node", ["node"], env, self.tmp / f"{log_name}.log")
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
        return wait_for(
            lambda: (r := self.requester.result(request_id))[0] and r,
            timeout,
            f"callback for request {request_id}",
        )

    def row_status(self, request_id: int) -> str | None:
        from sqlalchemy import select

        from oracle.db import InferenceRequest

        with self.db.session() as s:
            return s.scalar(
                select(InferenceRequest.status).where(InferenceRequest.request_id == request_id)
            )


def deploy_consumer(w3: Web3, name: str, coordinator: str) -> Any:
    from oracle.chain.artifacts import load_artifact
    from oracle.chain.deploy import deploy

    address, _ = deploy(w3, Account.from_key(ANVIL_DEV_KEYS[0]), name, coordinator)
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


@pytest.fixture
def stack(anvil: Anvil, db_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[Stack]:
    """Contracts on anvil, the schema migrated, the example model registered, a worker up."""
    w3 = anvil.w3()
    owner: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
    node_account: LocalAccount = Account.from_key(NODE_KEY)
    deployment = deploy_stack(w3, owner, anvil.url, CoordinatorParams(request_timeout_blocks=5))
    deployment_file = tmp_path / "deployment.json"
    deployment.write(deployment_file)
    register_node(w3, node_account, deployment.coordinator, 2 * ETHER)
    client = redis.Redis.from_url(redis_server.url(0))
    client.flushdb()
    client.close()
    overrides: dict[str, Any] = {
        "chain": {
            "rpc_url": anvil.url,
            "deployment_file": str(deployment_file),
            "confirmations": 0,
            "poll_interval_s": 0.05,
        },
        "db": {"url": db_url},
        "redis": {"url": redis_server.url(0)},
        "store": {"path": str(tmp_path / "models")},
        "metrics": {"port": 0},
        "relayer": {"receipt_poll_s": 0.05, "idle_wait_s": 0.2},
        "signer": {"private_key": NODE_KEY},
    }
    settings = load_settings(None, **overrides)
    db = Database(db_url)
    db.upgrade()
    coordinator = CoordinatorClient(connect(anvil.url), deployment.coordinator)
    model_id, _ = register_model(
        db, ArtifactStore(settings.store.path), coordinator, owner, EXAMPLE_MODEL, 16, 16
    )
    empty_config = tmp_path / "empty.yaml"
    empty_config.write_text("{}\n")
    env = {
        "ORACLE_CONFIG": str(empty_config),
        "ORACLE_CHAIN__RPC_URL": anvil.url,
        "ORACLE_CHAIN__DEPLOYMENT_FILE": str(deployment_file),
        "ORACLE_DB__URL": db_url,
        "ORACLE_REDIS__URL": redis_server.url(0),
        "ORACLE_STORE__PATH": str(tmp_path / "models"),
    }
    ready = tmp_path / "worker.ready"
    worker = OracleProcess(
        "worker",
        ["worker", "--ready-file", str(ready)],
        env,
        tmp_path / "worker.log",
        ready=file_exists(ready),
    )
    worker.start()
    requester = Requester.from_settings(settings, key=REQUESTER_KEY)
    try:
        yield Stack(
            anvil,
            w3,
            deployment,
            settings,
            db,
            coordinator,
            requester,
            model_id,
            worker,
            tmp_path,
            env,
        )
    finally:
        worker.stop()
        db.dispose()


@pytest.fixture
def running_node(stack: Stack) -> Iterator[Any]:
    from oracle.node import Node

    node = Node.with_celery(stack.settings, serve_status=False)
    node.start()
    yield node
    node.stop()


# -- zk mode ------------------------------------------------------------------------------
EXAMPLE_CALIBRATION = ROOT / "models" / "example_mlp.calibration.json"


@dataclass(frozen=True)
class ZkModel:
    onnx: Path
    model_id: str


def onnx_variant(dest: Path, tag: str, weight_factor: float = 1.0) -> Path:
    """A copy of the example model with its own bytes (so its own model id); with a
    ``weight_factor`` other than 1 it is also a different function (a different circuit)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(EXAMPLE_MODEL))
    model.doc_string = f"test variant {tag}"
    if weight_factor != 1.0:
        for i, init in enumerate(model.graph.initializer):
            scaled = numpy_helper.to_array(init).astype(np.float32) * np.float32(weight_factor)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(scaled, init.name))
    onnx.save(model, str(dest))
    return dest


@pytest.fixture(scope="session")
def zk_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Circuits built once per session (dev SRS): 'a' and 'b' are different functions."""
    from oracle.models import onboarding, zk
    from oracle.models.store import model_id_of

    root = tmp_path_factory.mktemp("zkstore")
    store = ArtifactStore(root / "models")
    models: dict[str, Any] = {"root": store.root}
    for tag, factor in (("a", 1.0), ("b", 0.5)):
        path = onnx_variant(root / f"zk_{tag}.onnx", tag, factor)
        onboarding.build(
            store,
            path,
            EXAMPLE_CALIBRATION,
            onboarding.SrsChoice(dev=True),
            zk.CircuitParams(),
            lambda _: None,
        )
        models[tag] = ZkModel(path, model_id_of(path))
    return models


def seed_store(zk_store: dict[str, Any], dest: Path) -> None:
    """Copy the session's built circuits into a test's own artifact store."""
    for sub in ("zk", "srs"):
        shutil.copytree(zk_store["root"] / sub, dest / sub, dirs_exist_ok=True)


def start_prover(stack: Stack) -> OracleProcess:
    ready = stack.tmp / "prover.ready"
    prover = OracleProcess(
        "prover",
        ["worker", "--queue", "proof", "--ready-file", str(ready)],
        stack.worker_env,
        stack.tmp / "prover.log",
        ready=file_exists(ready),
    )
    prover.start()
    return prover
