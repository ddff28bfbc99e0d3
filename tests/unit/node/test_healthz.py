"""``/healthz`` over real HTTP: the status code follows the state, the body carries codes."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from oracle.db import Database
from oracle.dev.processes import free_port
from oracle.node.health import HealthProblem, HealthReport
from oracle.node.http import StatusServer
from oracle.node.lifecycle import Supervisor
from oracle.node.metrics import NodeView
from oracle.settings import MetricsSettings
from oracle.types import HealthCode


class StubNode:
    def __init__(self, db: Database | None = None) -> None:
        self.report = HealthReport()
        self.db = db

    def metrics_view(self) -> NodeView:
        if self.db is None:
            raise AssertionError("this test does not scrape /metrics")
        return NodeView(db=self.db, chain_id=1, coordinator="0xc", health=self.health)

    def health(self) -> HealthReport:
        return self.report

    def status(self) -> dict[str, Any]:
        return {"requests": {}, "cursors": [], **self.report.as_json()}


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def serve(node: StubNode) -> tuple[Supervisor, str]:
    """The status server on a free port, polled until it answers."""
    port = free_port()
    supervisor = Supervisor([StatusServer(node, MetricsSettings(port=port))])  # type: ignore[arg-type]
    supervisor.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            get(f"{base}/healthz")
            return supervisor, base
        except OSError:
            assert time.monotonic() < deadline, "status server did not come up"
            time.sleep(0.05)


def test_healthz_answers_200_206_503() -> None:
    node = StubNode()
    supervisor, base = serve(node)
    url = f"{base}/healthz"
    try:
        code, body = get(url)
        assert code == 200 and body == {"state": "healthy", "healthy": True, "problems": []}

        node.report = HealthReport([HealthProblem(HealthCode.SIGNER_UNFUNDED, "no gas money")])
        code, body = get(url)
        assert code == 206 and body["state"] == "degraded" and body["healthy"] is False
        assert body["problems"] == [{"code": "signer_unfunded", "detail": "no gas money"}]

        node.report = HealthReport([HealthProblem(HealthCode.LISTENER_HALTED, "too deep")])
        code, body = get(url)
        assert code == 503 and body["state"] == "down"
    finally:
        supervisor.stop()
    assert supervisor.wait(threading.Event()) is None  # stopping is not a failure


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_over_http_follow_the_health_report(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'oracle.db'}")
    db.upgrade()
    node = StubNode(db)
    supervisor, base = serve(node)
    problem = (
        "oracle_health_problem",
        (("chain_id", "1"), ("code", "listener_halted"), ("coordinator", "0xc")),
    )
    try:
        samples = scrape(f"{base}/metrics")
        assert samples[problem] == 0 and samples[("oracle_database_up", ())] == 1
        node.report = HealthReport([HealthProblem(HealthCode.LISTENER_HALTED, "too deep")])
        samples = scrape(f"{base}/metrics")
        assert samples[problem] == 1
        down = (
            "oracle_health_state",
            (("chain_id", "1"), ("coordinator", "0xc"), ("state", "down")),
        )
        assert samples[down] == 1
    finally:
        supervisor.stop()
        db.dispose()
    assert supervisor.wait(threading.Event()) is None
