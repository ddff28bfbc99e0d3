"""What every command shares: the typer apps, the consoles, the context, ``fail``."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from oracle.paths import ROOT
from oracle.settings import Settings, load_settings

app = typer.Typer(
    name="oracle",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="On-chain AI coprocessor and oracle: run a node, workers, or the local stack.",
)
model_app = typer.Typer(no_args_is_help=True, help="Register and inspect models.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic).")
contracts_app = typer.Typer(no_args_is_help=True, help="Build the Solidity contracts.")
app.add_typer(model_app, name="model")
app.add_typer(db_app, name="db")
app.add_typer(contracts_app, name="contracts")

out = Console()
err = Console(stderr=True)
LOCAL_CONFIG = ROOT / "var" / "local" / "oracle.yaml"


@dataclass
class Context:
    config: Path | None

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, **overrides)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` instead of raising in the main thread."""

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
