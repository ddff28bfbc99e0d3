"""``oracle watch``: check other nodes' optimistic answers and challenge the wrong ones."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from pydantic import ValidationError

from oracle.cli.common import app, fail, out, stop_on_signals


@app.command()
def watch(
    ctx: typer.Context,
    budget_wei: Annotated[
        int | None,
        typer.Option(help="Most challenger bonds at risk at once (default: watcher.budget_wei)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="A model id to watch (repeat; default: every model whose circuit is held)."
        ),
    ] = None,
    own_node: Annotated[
        str | None, typer.Option(help="Your node's address: its answers are not checked.")
    ] = None,
) -> None:
    """Run the watcher until Ctrl-C: re-run other nodes' optimistic answers through the
    circuits this host holds, challenge the wrong ones (within a budget), and finalise
    the challenges nobody proved. Needs watcher.enabled and a watcher key
    (ORACLE_WATCHER__SIGNER__PRIVATE_KEY)."""
    from oracle.node.lifecycle import ServiceFailedError, Supervisor
    from oracle.settings import WatcherSettings
    from oracle.watcher import build_watcher

    settings = ctx.obj.settings()
    updates: dict[str, object] = {}
    if budget_wei is not None:
        updates["budget_wei"] = budget_wei
    if model:
        updates["models"] = model
    if own_node is not None:
        updates["own_node"] = own_node
    try:
        watcher_settings = WatcherSettings.model_validate(
            {**settings.watcher.model_dump(), **updates}
        )
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        fail(f"invalid watcher options: {problems}")
    if not watcher_settings.enabled:
        fail("the watcher is off: set watcher.enabled (ORACLE_WATCHER__ENABLED=true) and its key")
    settings = settings.model_copy(update={"watcher": watcher_settings})
    watcher = build_watcher(settings)
    out.print(f"watching {watcher.client.address} as {watcher.address}")
    supervisor = Supervisor([watcher])
    stop = threading.Event()
    stop_on_signals(stop)
    supervisor.start()
    try:
        failure = supervisor.wait(stop)
    finally:
        supervisor.stop()
    if failure is not None:
        fail(f"watcher stopped: {ServiceFailedError(str(failure))}", code=1)
