"""The ``oracle`` command line.

Every command turns expected failures (bad arguments, missing settings, an unreachable
chain, a reverted transaction) into a one-line message and a non-zero exit code. The
commands live in modules by theme; importing them registers them on :data:`app`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from oracle.cli import admin, chain, local, models, requests, run, watch
from oracle.cli.common import LOCAL_CONFIG, Context, app, err, fail
from oracle.errors import OracleError

__all__ = ["app", "main"]
_COMMANDS = (run, local, chain, models, admin, requests, watch)  # imported for their registrations


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings file (default: $ORACLE_CONFIG, "
            "else var/local/oracle.yaml when `oracle up` wrote one).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    from oracle.log import configure_logging

    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}")
    configure_logging(log_level.upper())
    if config is None and not os.environ.get("ORACLE_CONFIG") and LOCAL_CONFIG.exists():
        config = LOCAL_CONFIG
    if config is not None and not config.exists():
        fail(f"config file {config} does not exist")
    ctx.obj = Context(config)


def main() -> None:
    """Entry point: expected errors become one line on stderr, never a traceback."""
    try:
        app(standalone_mode=True)
    except OracleError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
