"""The node: its long-running parts built and wired together in one place.

Listener (chain in), re-dispatcher (lost hand-overs), relayer (fulfilments out) and the
HTTP status endpoint each have the :class:`~oracle.node.lifecycle.Service` shape and run
under one :class:`~oracle.node.lifecycle.Supervisor`: the first failure stops them all.
Workers run as their own processes; the node only enqueues work for them, through the
functions it is handed (it does not import the Celery app). On start, before any part
runs, the node declares on chain the models it holds (:mod:`oracle.node.serving`), so the
Coordinator can assign it requests for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.signer import load_signer
from oracle.db import Database
from oracle.errors import ChainError
from oracle.ingest.listener import Listener
from oracle.ingest.mirror import ModelMirror
from oracle.ingest.redispatch import Redispatcher
from oracle.ingest.store import SqlListenerStore
from oracle.models.store import ArtifactStore
from oracle.node.health import HealthReport, PartsSeen, evaluate
from oracle.node.http import StatusServer
from oracle.node.lifecycle import Failure, Service, ServiceFailedError, Supervisor
from oracle.node.metrics import NodeView, Web3Probe
from oracle.node.serving import declare_held_models
from oracle.node.status import collect_status
from oracle.relayer import Relayer
from oracle.relayer.wake import Notifier
from oracle.settings import Settings
from oracle.types import HealthProblem

log = structlog.get_logger(__name__)

Enqueue = Callable[[int], None]


class RelayerService:
    """The relayer in the :class:`Service` shape (it has start/run/stop, not a name)."""

    name = "relayer"

    def __init__(self, relayer: Relayer) -> None:
        self.relayer = relayer

    def start(self) -> None:
        self.relayer.start()

    def run(self) -> None:
        self.relayer.run()

    def stop(self) -> None:
        self.relayer.stop()


class Node:
    """Builds the node's parts from settings; :meth:`start` / :meth:`stop` them together."""

    def __init__(
        self,
        settings: Settings,
        enqueue_inference: Enqueue,
        enqueue_proof: Enqueue | None = None,
        serve_status: bool = True,
    ) -> None:
        self.settings = settings
        self.db = Database(settings.db.url)
        self.db.require_schema()
        address = settings.coordinator_address()
        account = load_signer(settings.signer)
        listener_w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
        relayer_w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
        try:
            self.chain_id = int(listener_w3.eth.chain_id)
        except Exception as exc:
            raise ChainError(f"cannot reach the RPC at {settings.chain.rpc_url}: {exc}") from exc
        if not listener_w3.eth.get_code(listener_w3.to_checksum_address(address)):
            raise ChainError(
                f"no contract at Coordinator address {address} on chain {self.chain_id}"
            )
        coordinator = CoordinatorClient(listener_w3, address)
        self._account = account
        self._store = ArtifactStore(Path(settings.store.path))
        self._coordinator = coordinator
        self.redispatcher = Redispatcher(
            self.db,
            self.chain_id,
            coordinator.address,
            enqueue_inference,
            enqueue_proof,
            requeue_after_s=settings.worker.requeue_after_s,
            proof_timeout_s=settings.zk.proof_timeout_s,
            chain=CoordinatorClient(
                connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s), address
            ),
        )
        self.listener = Listener(
            settings.chain,
            SqlListenerStore(self.db, self.chain_id, coordinator.address, account.address),
            coordinator,
            self.chain_id,
            self.redispatcher.hand_over_many,
            mirror=ModelMirror(self.db, coordinator, self._store),
            start_block=_start_block(settings),
        )
        self._notifier = Notifier(settings.redis.url, self.chain_id, coordinator.address)
        self.relayer = Relayer(
            settings,
            self.db,
            CoordinatorClient(relayer_w3, address),
            self.chain_id,
            account,
            self._notifier,
        )
        # /metrics reads the chain over its own connection (it runs in the HTTP thread).
        self._metrics_probe = Web3Probe(
            connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
        )
        services: list[Service] = [self.redispatcher, self.listener, RelayerService(self.relayer)]
        if serve_status and settings.metrics.port:
            services.append(StatusServer(self, settings.metrics))
        self.supervisor = Supervisor(services)

    @classmethod
    def with_celery(cls, settings: Settings, serve_status: bool = True) -> Node:
        """A node that enqueues work on the Celery app (``workers.app``), configured here."""
        from workers import app as celery_app

        celery_app.configure(settings)
        return cls(
            settings,
            celery_app.enqueue_inference,
            celery_app.enqueue_proof,
            serve_status=serve_status,
        )

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Declare the models this node holds, then start every part and return; parts run
        in threads until :meth:`stop`."""
        declare_held_models(self.db, self._store, self._coordinator, self._account)
        self.supervisor.start()
        log.info(
            "node.started",
            chain_id=self.chain_id,
            coordinator=self.listener.address,
            signer=self.relayer.sender,
        )

    def run_forever(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; raise :class:`ServiceFailedError` if a part failed."""
        try:
            self.start()
            failure = self.supervisor.wait(stop)
        finally:
            self.stop()
        if failure is not None:
            raise ServiceFailedError(str(failure))

    def stop(self) -> None:
        self.supervisor.stop()
        self._notifier.close()
        self.db.dispose()
        log.info("node.stopped")

    @property
    def failure(self) -> Failure | None:
        return self.supervisor.failure

    # -- health ----------------------------------------------------------------------
    def health(self) -> HealthReport:
        try:
            cursor = self.listener.store.cursor()
            halted = cursor.halted_reason if cursor is not None else None
        except Exception as exc:  # the database is down: the listener's polls fail too
            log.warning("node.health_cursor_unreadable", error=type(exc).__name__)
            halted = None
        return evaluate(
            PartsSeen(
                now=time.time(),
                stale_after_s=max(10.0, self.settings.chain.poll_interval_s * 20),
                listener_halted=halted,
                listener_last_poll_ok=self.listener.last_poll_ok,
                relayer_problem=self.relayer.health.problem,
                relayer_last_tick_ok=self.relayer.health.last_tick_ok,
                relayer_retrying=self.relayer.health.retrying(),
            )
        )

    def healthy(self) -> tuple[bool, list[HealthProblem]]:
        report = self.health()
        return report.healthy, report.problems

    def metrics_view(self) -> NodeView:
        """What ``/metrics`` reads at scrape time (see :mod:`oracle.node.metrics`)."""
        return NodeView(
            db=self.db,
            chain_id=self.chain_id,
            coordinator=self.listener.address,
            signer=self.relayer.sender,
            probe=self._metrics_probe,
            health=self.health,
            retrying=self.relayer.health.retrying,
            reorgs_seen=lambda: self.listener.reorgs_seen,
            prover_memory_limit_bytes=self.settings.zk.max_prover_memory_mb * 1024 * 1024,
            latency_window_s=self.settings.metrics.latency_window_s,
        )

    def status(self) -> dict[str, Any]:
        report = self.health()
        data = collect_status(self.db, self.chain_id, self.listener.address)
        data.update(report.as_json())
        data["signer"] = self.relayer.sender
        return data


def _start_block(settings: Settings) -> int | None:
    """The first block to read: the setting, else the block the deployment was made in."""
    if settings.chain.start_block is not None:
        return settings.chain.start_block
    deployment = settings.deployment() or {}
    if "deployed_block" in deployment:
        return int(deployment["deployed_block"])
    return None
