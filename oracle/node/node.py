"""The node: listener, relayer and status endpoint wired together in one place."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.signer import load_signer
from oracle.db import Database
from oracle.errors import ChainError
from oracle.ingest.listener import Listener
from oracle.models.store import ArtifactStore
from oracle.node.http import StatusServer
from oracle.node.status import collect_status
from oracle.relayer import Relayer
from oracle.relayer.wake import Notifier
from oracle.settings import Settings
from workers import app as celery_app

log = structlog.get_logger(__name__)


@dataclass
class Node:
    """Start, run and stop the node's long-running parts. Workers run as their own processes."""

    settings: Settings
    serve_status: bool = True
    db: Database = field(init=False)
    listener: Listener = field(init=False)
    relayer: Relayer = field(init=False)
    chain_id: int = field(init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _status_server: StatusServer | None = field(default=None, init=False)
    _notifiers: list[Notifier] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        settings = self.settings
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
        celery_app.configure(settings)
        deployment = settings.deployment() or {}
        start_block = settings.chain.start_block
        if start_block is None and "deployed_block" in deployment:
            start_block = int(deployment["deployed_block"])
        self.listener = Listener(
            settings.chain,
            self.db,
            CoordinatorClient(listener_w3, address),
            self.chain_id,
            celery_app.enqueue_inference,
            ArtifactStore(Path(settings.store.path)),
            start_block=start_block,
            dispatch_proof=celery_app.enqueue_proof,
            proof_timeout_s=settings.zk.proof_timeout_s,
            requeue_after_s=settings.worker.requeue_after_s,
        )
        notifier = Notifier(settings.redis.url, self.chain_id, self.listener.address)
        self._notifiers.append(notifier)
        self.relayer = Relayer(
            settings,
            self.db,
            CoordinatorClient(relayer_w3, address),
            self.chain_id,
            account,
            notifier,
        )

    def start(self) -> None:
        self.listener.start()
        self.relayer.start()
        self._threads = [
            threading.Thread(target=self.listener.run, name="listener", daemon=True),
            threading.Thread(target=self.relayer.run, name="relayer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.serve_status and self.settings.metrics.port:
            self._status_server = StatusServer(self, self.settings.metrics)
            self._status_server.start()
        log.info(
            "node.started",
            chain_id=self.chain_id,
            coordinator=self.listener.address,
            signer=self.relayer.sender,
        )

    def run_forever(self, stop: threading.Event) -> None:
        self.start()
        try:
            while not stop.is_set():
                stop.wait(1.0)
        finally:
            self.stop()

    def stop(self) -> None:
        self.listener.stop()
        self.relayer.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._status_server is not None:
            self._status_server.stop()
        for notifier in self._notifiers:
            notifier.close()
        self.db.dispose()
        log.info("node.stopped")

    def healthy(self) -> tuple[bool, list[str]]:
        problems: list[str] = []
        now = time.time()
        stale = max(10.0, self.settings.chain.poll_interval_s * 20)
        if self.listener.halted:
            problems.append(f"listener halted: {self.listener.halted}")
        elif self.listener.last_poll_ok is None or now - self.listener.last_poll_ok > stale:
            problems.append("listener has not polled the chain recently")
        if self.relayer.health.problem is not None:
            problems.append(self.relayer.health.problem.detail)
        if (
            self.relayer.health.last_tick_ok is None
            or now - self.relayer.health.last_tick_ok > stale
        ):
            problems.append("relayer has not completed a round recently")
        return (not problems, problems)

    def status(self) -> dict[str, Any]:
        ok, problems = self.healthy()
        data = collect_status(self.db, self.chain_id, self.listener.address)
        data.update({"healthy": ok, "problems": problems, "signer": self.relayer.sender})
        return data
