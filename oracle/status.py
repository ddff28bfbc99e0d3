"""Status and metrics: request counts by state, the listener's cursor, a health check.

Served over HTTP by the node (``/healthz``, ``/status``, ``/metrics``) and printed by
``oracle status`` straight from the database.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from starlette.responses import Response

from oracle.db import ChainCursor, Database, InferenceRequest
from oracle.settings import MetricsSettings

if TYPE_CHECKING:
    from oracle.node import Node


def collect_status(
    db: Database, chain_id: int | None = None, coordinator: str | None = None
) -> dict[str, Any]:
    """Counts per request state, and each cursor. Filters by chain/coordinator when given."""
    with db.session() as s:
        q = select(InferenceRequest.status, func.count()).group_by(InferenceRequest.status)
        cq = select(ChainCursor)
        if chain_id is not None:
            q = q.where(InferenceRequest.chain_id == chain_id)
            cq = cq.where(ChainCursor.chain_id == chain_id)
        if coordinator is not None:
            q = q.where(InferenceRequest.coordinator == coordinator)
            cq = cq.where(ChainCursor.coordinator == coordinator)
        counts = {status: int(n) for status, n in s.execute(q)}
        cursors = [
            {
                "chain_id": c.chain_id,
                "coordinator": c.coordinator,
                "block": c.block_number,
                "halted": c.halted_reason,
            }
            for c in s.scalars(cq)
        ]
    return {"requests": counts, "cursors": cursors}


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
