"""Shared fixtures: real redis-server, real PostgreSQL cluster, real anvil, real workers.

The logic lives in ``tests/support``; this file only scopes it as fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oracle.chain.compile import compile_contracts
from oracle.dev.processes import RedisServer
from tests.support.contract import Chain, deployed_chain, reverted_after
from tests.support.models import build_zk_store, seed_store, shared_circuit
from tests.support.node import new_node
from tests.support.postgres import PostgresCluster, postgres_cluster
from tests.support.stack import Stack, started_stack
from tests.support.zk import onboard


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-skip",
        action="store_true",
        help="fail the run when any test is skipped (`make test`: a skipped test in CI is a "
        "test that never runs; the set-up installs what every test needs)",
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.getoption("--fail-on-skip") or hasattr(session.config, "workerinput"):
        return  # under xdist the controller, which sees every worker's reports, decides
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        for report in skipped:
            reporter.write_line(f"SKIPPED (not allowed with --fail-on-skip): {report.nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A scenario kept out of `make test` must still run in `make faults` (``-m faults``)."""
    for item in items:
        for only_in_faults in ("slow_fault", "soak"):
            if item.get_closest_marker(only_in_faults) and not item.get_closest_marker("faults"):
                raise pytest.UsageError(f"{item.nodeid} is marked {only_in_faults} but not faults")


@pytest.fixture(scope="session", autouse=True)
def _contracts() -> None:
    compile_contracts()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oracle.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


@pytest.fixture
def stack(
    request: pytest.FixtureRequest, db_url: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Stack]:
    """Contracts on anvil, the schema migrated, the example model registered, a worker up
    (none for a test marked ``no_worker``: it answers no request through the node)."""
    worker = request.node.get_closest_marker("no_worker") is None
    timeout = request.node.get_closest_marker("request_timeout_blocks")
    with started_stack(
        tmp_path,
        db_url,
        redis_server.url(0),
        worker=worker,
        **({"request_timeout_blocks": int(timeout.args[0])} if timeout else {}),
    ) as s:
        yield s


@pytest.fixture
def prover(stack: Stack) -> Iterator[Any]:
    """A prover worker process on the test's stack."""
    proc = stack.start_prover()
    yield proc
    proc.stop()


@pytest.fixture
def zk_model_id(stack: Stack, zk_store: dict[str, Any]) -> str:
    """The session's circuit 'a' (the example MLP) onboarded on the test's stack, with its
    verifier, and served by its node."""
    seed_store(zk_store, Path(stack.settings.store.path))
    return onboard(stack, zk_store["a"]).model_id


@pytest.fixture
def running_node(stack: Stack) -> Iterator[Any]:
    node = new_node(stack.settings)
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def coordinator_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """The Coordinator alone on anvil, deployed once for every contract test."""
    with deployed_chain(tmp_path_factory.mktemp("coordinator-chain")) as ch:
        yield ch


@pytest.fixture
def chain(coordinator_chain: Chain) -> Iterator[Chain]:
    """The shared Coordinator chain, reverted to its freshly deployed state after the test."""
    with reverted_after(coordinator_chain) as ch:
        yield ch


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every pytest-xdist worker of this run shares (their temp dirs' parent),
    for what is built once per run (circuits): see ``tests.support.models.built_once``."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / "shared"


@pytest.fixture(scope="session")
def zk_store(shared_dir: Path) -> dict[str, Any]:
    """Circuits built once per run (dev SRS): 'a' and 'b' are different functions."""
    return build_zk_store(shared_dir)


@pytest.fixture(scope="session")
def circuit_of(shared_dir: Path) -> Callable[[Path, Path], Path]:
    """``circuit_of(onnx, calibration)``: a store with that model's circuit (dev SRS), built
    once per run; seed a test's store from it (``seed_from``) and onboarding finds it built."""
    return lambda onnx, calibration: shared_circuit(shared_dir, onnx, calibration)
