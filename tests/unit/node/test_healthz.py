"""``/healthz`` over real HTTP: the status code follows the state, the body carries codes."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from oracle.dev.processes import free_port
from oracle.node.health import HealthProblem, HealthReport
from oracle.node.http import StatusServer
from oracle.node.lifecycle import Supervisor
from oracle.settings import MetricsSettings
from oracle.types import HealthCode


class StubNode:
    def __init__(self) -> None:
        self.report = HealthReport()

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


def test_healthz_answers_200_206_503() -> None:
    node = StubNode()
    port = free_port()
    supervisor = Supervisor([StatusServer(node, MetricsSettings(port=port))])  # type: ignore[arg-type]
    supervisor.start()
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                code, body = get(url)
                break
            except OSError:
                assert time.monotonic() < deadline, "status server did not come up"
                time.sleep(0.05)
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
