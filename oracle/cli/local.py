"""The local stack and the demos: ``oracle up``, ``demo``, ``demo-defi``, ``demo-dao``,
``demo-optimistic``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from oracle.cli.common import (
    app,
    fail,
    out,
    stop_on_signals,
)
from oracle.paths import ROOT
from oracle.settings import Settings


@app.command()
def up(
    workdir: Annotated[Path, typer.Option(help="Where the stack keeps its state.")] = ROOT
    / "var"
    / "local",
    block_time: Annotated[
        float, typer.Option(min=0.0, help="anvil block time in seconds; 0 = automine.")
    ] = 1.0,
    port: Annotated[int, typer.Option(min=1, max=65535, help="anvil RPC port.")] = 8545,
) -> None:
    """Start the local stack (anvil, redis, contracts, node, worker) until Ctrl-C."""
    from oracle.dev.stack import LocalStack

    stack = LocalStack(workdir, block_time or None, anvil_port=port)
    stop = threading.Event()
    stop_on_signals(stop)
    with stack:
        settings = stack.settings()
        model_id = _register_example(stack, settings)
        out.print(f"[green]local stack up[/]: RPC {stack.anvil.url if stack.anvil else ''}")
        out.print(f"deployment: {stack.deployment_path}")
        out.print(f"config:     {stack.config_path} (the CLI picks it up by default)")
        out.print(f"example model: {model_id}")
        out.print(f"try: oracle request {model_id} --input 0.5,-0.25,0.1,0.9")
        out.print("Ctrl-C stops everything.")
        while not stop.is_set():
            stop.wait(1.0)
            for proc in (stack.node, stack.worker, stack.anvil, stack.redis):
                if proc is not None and not proc.alive():
                    fail(f"{proc.name} exited; see {proc.log_path}", code=1)


def _register_example(stack: Any, settings: Settings) -> str:
    from oracle.chain.client import CoordinatorClient, connect
    from oracle.db import Database
    from oracle.models.registration import register_model
    from oracle.models.store import ArtifactStore

    w3 = connect(settings.chain.rpc_url)
    model_id, _ = register_model(
        Database(settings.db.url),
        ArtifactStore(settings.store.path),
        CoordinatorClient(w3, settings.coordinator_address()),
        stack.owner,
        ROOT / "models" / "example_mlp.onnx",
        16,
        16,
    )
    stack.serve(model_id)
    return model_id


@app.command()
def demo(
    requests: Annotated[int, typer.Option(min=1, max=500, help="How many requests to send.")] = 20,
    block_time: Annotated[float, typer.Option(min=0.0, help="anvil block time (s).")] = 1.0,
    workdir: Annotated[Path | None, typer.Option(help="State dir (default: a temp dir).")] = None,
) -> None:
    """Start the local stack, answer N requests from the example consumer, print, stop."""
    from oracle.examples.basic import run_demo

    fulfilled = run_demo(requests, block_time or None, workdir, out)
    if fulfilled != requests:
        raise typer.Exit(1)


def _wide() -> Console:
    """The story tables need about 130 columns; a pipe or CI log gets that, not 80."""
    return out if out.is_terminal else Console(width=130)


@app.command("demo-defi")
def demo_defi(
    workdir: Annotated[Path | None, typer.Option(help="State dir (default: a temp dir).")] = None,
) -> None:
    """A lending market whose loan limits come from a Zk-proved risk model: walk a story."""
    from oracle.examples.defi import run_defi_demo

    if not run_defi_demo(_wide(), workdir):
        raise typer.Exit(1)


@app.command("demo-optimistic")
def demo_optimistic(
    requests: Annotated[int, typer.Option(min=2, max=40, help="Optimistic requests to send.")] = 8,
    workdir: Annotated[Path | None, typer.Option(help="State dir (default: a temp dir).")] = None,
) -> None:
    """Optimistic mode with a cheating node: honest answers finalised, wrong ones challenged
    by the watcher, slashed and answered again in Zk; the consumer never sees a wrong value."""
    from oracle.examples.optimistic import run_optimistic_demo

    if not run_optimistic_demo(requests, workdir, _wide()):
        raise typer.Exit(1)


@app.command("demo-dao")
def demo_dao(
    workdir: Annotated[Path | None, typer.Option(help="State dir (default: a temp dir).")] = None,
) -> None:
    """A DAO whose proposals are screened by a Zk-proved model before they can be queued."""
    from oracle.examples.dao import run_dao_demo

    if not run_dao_demo(_wide(), workdir):
        raise typer.Exit(1)
