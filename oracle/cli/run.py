"""Running the node and the workers: ``oracle node``, ``oracle worker``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from oracle.cli.common import (
    app,
    fail,
    stop_on_signals,
)


@app.command()
def node(ctx: typer.Context) -> None:
    """Run the listener and relayer against any RPC and Coordinator (from settings).

    Stops everything on the first failure of any part and exits non-zero."""
    from oracle.node import Node
    from oracle.node.lifecycle import ServiceFailedError

    stop = threading.Event()
    stop_on_signals(stop)
    try:
        Node.with_celery(ctx.obj.settings()).run_forever(stop)
    except ServiceFailedError as exc:
        fail(f"node stopped: {exc}", code=1)


@app.command()
def worker(
    ctx: typer.Context,
    queue: Annotated[
        str, typer.Option(help="Queue to consume: inference (onnxruntime) or proof (EZKL).")
    ] = "inference",
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    ready_file: Annotated[Path | None, typer.Option(help="Touched once consuming.")] = None,
) -> None:
    """Run a Celery worker: inference (onnxruntime; CUDA when available) or proof (EZKL)."""
    from celery.signals import worker_ready

    from workers import app as celery_app
    from workers.app import INFERENCE_QUEUE, PROOF_QUEUE

    if queue not in (INFERENCE_QUEUE, PROOF_QUEUE):
        fail(f"unknown queue {queue!r}: choose {INFERENCE_QUEUE!r} or {PROOF_QUEUE!r}")
    if queue == PROOF_QUEUE and concurrency != 1:
        fail(
            "a prover worker proves one request at a time (EZKL uses every core); "
            "run more prover workers for more throughput"
        )
    settings = ctx.obj.settings()
    celery_app.configure(settings)
    if queue == PROOF_QUEUE and settings.zk.prover_nice:
        # EZKL's threads inherit it: a proof takes the cores plain requests leave idle.
        os.nice(settings.zk.prover_nice)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)

        @worker_ready.connect(weak=False)
        def _ready(**_: Any) -> None:
            ready_file.write_text(str(os.getpid()))

    celery_app.app.worker_main(
        [
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"{queue}@%h-{os.getpid()}",
        ]
    )
