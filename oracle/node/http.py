"""The node's HTTP endpoint: ``/healthz``, ``/status`` and ``/metrics``.

``/metrics`` is a :class:`~oracle.node.metrics.NodeCollector` over the node's
:meth:`~oracle.node.Node.metrics_view`, read at each scrape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.responses import Response

from oracle.node.metrics import NodeCollector
from oracle.settings import MetricsSettings

if TYPE_CHECKING:
    from oracle.node import Node


def build_app(node: Node) -> FastAPI:
    app = FastAPI(title="oracle node", docs_url=None, redoc_url=None)
    registry = CollectorRegistry()
    # Looked up at each scrape, so a node without a database can still answer /healthz.
    registry.register(NodeCollector(lambda: node.metrics_view()))  # noqa: PLW0108

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
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

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
