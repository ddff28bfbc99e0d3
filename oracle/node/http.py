"""The node's HTTP endpoint: ``/healthz``, ``/status`` and ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from starlette.responses import Response

from oracle.settings import MetricsSettings

if TYPE_CHECKING:
    from oracle.node import Node


def build_app(node: Node) -> FastAPI:
    app = FastAPI(title="oracle node", docs_url=None, redoc_url=None)
    registry = CollectorRegistry()
    by_state = Gauge("oracle_requests", "Requests by state", ["state"], registry=registry)
    cursor_block = Gauge("oracle_listener_block", "Last block the listener read", registry=registry)
    healthy = Gauge("oracle_healthy", "1 when the node reports healthy", registry=registry)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 healthy, 206 degraded (work waits), 503 down; problems as stable codes."""
        report = node.health()
        return JSONResponse(report.as_json(), status_code=report.http_status)

    @app.get("/status")
    def status() -> dict[str, Any]:
        return node.status()

    @app.get("/metrics")
    def metrics() -> Response:
        data = node.status()
        for state, n in data["requests"].items():
            by_state.labels(state=state).set(n)
        if data["cursors"]:
            cursor_block.set(data["cursors"][0]["block"])
        healthy.set(1 if data["healthy"] else 0)
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return app


class StatusServer:
    """The HTTP endpoint as a long-running part: ``run`` serves until ``stop``."""

    name = "status"

    def __init__(self, node: Node, settings: MetricsSettings) -> None:
        config = uvicorn.Config(
            build_app(node),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)

    def start(self) -> None:
        self._server.should_exit = False

    def run(self) -> None:
        self._server.run()

    def stop(self) -> None:
        self._server.should_exit = True
