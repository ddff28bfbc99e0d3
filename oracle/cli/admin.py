"""Operating a node: ``oracle db upgrade``, ``oracle status``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from oracle.cli.common import (
    app,
    db_app,
    out,
)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Apply Alembic migrations (the only way the schema is created)."""
    from oracle.db import Database

    settings = ctx.obj.settings()
    Database(settings.db.url).upgrade(revision)
    out.print(f"database at revision {revision}")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests by state and the listener's cursor, read from the database."""
    from oracle.db import Database
    from oracle.node.status import collect_status

    settings = ctx.obj.settings()
    db = Database(settings.db.url)
    db.require_schema()
    data = collect_status(db)
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title="requests by state")
    table.add_column("state")
    table.add_column("count", justify="right")
    for state, n in sorted(data["requests"].items()):
        table.add_row(state, str(n))
    out.print(table)
    for c in data["cursors"]:
        halted = f" [red]HALTED: {c['halted']}[/]" if c["halted"] else ""
        out.print(
            f"chain {c['chain_id']} coordinator {c['coordinator']}: block {c['block']}{halted}"
        )
