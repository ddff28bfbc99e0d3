"""The node's HTTP endpoint: ``/healthz``, ``/status`` and ``/metrics``."""

from __future__ import annotations

import threading
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
        ok, problems = node.healthy()
        return JSONResponse({"healthy": ok, "problems": problems}, status_code=200 if ok else 503)

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
    def __init__(self, node: Node, settings: MetricsSettings) -> None:
        config = uvicorn.Config(
            build_app(node),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
