"""``oracle requests list | show ID | retry ID``: an operator looking at one request.

``show`` prints the latest time the row entered each state, the transaction that answers
it, its proof (size and timings, never the bytes) and its error with the reason code
``/metrics`` counts it under. ``retry`` sends an ``abandoned`` or ``unserved`` request
round the pipeline again. Bad arguments (an unknown state, a request that does not exist,
or one that is ambiguous across chains) get a message and exit code 2.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from oracle.cli.common import app, fail, out
from oracle.db import Database, InferenceRequest, Transaction
from oracle.db.models import utcnow
from oracle.db.rows import update_request_if
from oracle.node.metrics_latency import mode_name
from oracle.node.metrics_requests import error_reason
from oracle.types import RequestStatus, TxStatus

requests_app = typer.Typer(
    no_args_is_help=True, help="Look at requests: list, show one, retry one the node gave up."
)
app.add_typer(requests_app, name="requests")

RETRYABLE = (RequestStatus.ABANDONED, RequestStatus.UNSERVED)
SETTLED_FAILED_TX = (TxStatus.REVERTED.value, TxStatus.DROPPED.value)
TIMELINE = (
    ("seen", "seen_at"),
    ("queued", "queued_at"),
    ("inferred", "inferred_at"),
    ("proving", "proving_at"),
    ("proved", "proved_at"),
    ("submitted", "submitted_at"),
    ("confirmed", "confirmed_at"),
    ("last change", "updated_at"),
)

ChainOpt = Annotated[int | None, typer.Option("--chain-id", help="Only this chain.")]
CoordOpt = Annotated[str | None, typer.Option("--coordinator", help="Only this Coordinator.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IdArg = Annotated[int, typer.Argument(help="The Coordinator's request id.", min=0)]


def _db(ctx: typer.Context) -> Database:
    db = Database(ctx.obj.settings().db.url)
    db.require_schema()
    return db


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _where(q: Any, chain_id: int | None, coordinator: str | None) -> Any:
    if chain_id is not None:
        q = q.where(InferenceRequest.chain_id == chain_id)
    if coordinator is not None:
        q = q.where(InferenceRequest.coordinator == coordinator)
    return q


def _one(s: Session, request_id: int, chain_id: int | None, coordinator: str | None) -> Any:
    q = _where(
        select(InferenceRequest).where(InferenceRequest.request_id == request_id),
        chain_id,
        coordinator,
    )
    found = list(s.scalars(q))
    if not found:
        fail(f"no request {request_id} in the database" + _scope(chain_id, coordinator))
    if len(found) > 1:
        where = ", ".join(f"chain {r.chain_id} coordinator {r.coordinator}" for r in found)
        fail(
            f"request {request_id} exists on more than one Coordinator ({where}): "
            "pick one with --chain-id and --coordinator"
        )
    return found[0]


def _scope(chain_id: int | None, coordinator: str | None) -> str:
    parts = []
    if chain_id is not None:
        parts.append(f"chain {chain_id}")
    if coordinator is not None:
        parts.append(f"coordinator {coordinator}")
    return f" ({', '.join(parts)})" if parts else ""


@requests_app.command("list")
def list_requests(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only these states (repeatable).")
    ] = None,
    chain_id: ChainOpt = None,
    coordinator: CoordOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest requests, newest first."""
    known = {s.value for s in RequestStatus}
    for name in state or []:
        if name not in known:
            fail(f"unknown state {name!r}: one of {', '.join(sorted(known))}")
    db = _db(ctx)
    q = _where(select(InferenceRequest), chain_id, coordinator)
    if state:
        q = q.where(InferenceRequest.status.in_(state))
    with db.session() as s:
        rows = [_summary(r) for r in s.scalars(q.order_by(InferenceRequest.id.desc()).limit(limit))]
    db.dispose()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table(title=f"requests (newest {limit})")
    for column in ("id", "chain", "mode", "state", "model", "seen", "error"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["request_id"]),
            str(r["chain_id"]),
            r["mode"],
            r["state"],
            r["model_id"][:10],
            (r["seen_at"] or "")[:19].replace("T", " "),
            r["error_reason"] if r["error"] else "",
        )
    out.print(table)


def _summary(r: InferenceRequest) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "chain_id": r.chain_id,
        "coordinator": r.coordinator,
        "mode": mode_name(r.mode),
        "state": r.status,
        "model_id": r.model_id,
        "seen_at": _iso(r.seen_at),
        "error": r.error,
        "error_reason": error_reason(r.error),
    }


@requests_app.command("show")
def show(
    ctx: typer.Context,
    request_id: IdArg,
    chain_id: ChainOpt = None,
    coordinator: CoordOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One request: its states with timestamps, transaction, proof and error."""
    db = _db(ctx)
    with db.session() as s:
        row = _one(s, request_id, chain_id, coordinator)
        tx = s.get(Transaction, row.fulfil_tx_id) if row.fulfil_tx_id is not None else None
        data = _detail(row, tx)
        if tx is not None:  # a fulfillBatch answers several requests
            data["transaction"]["answers"] = sorted(
                s.scalars(
                    select(InferenceRequest.request_id).where(
                        InferenceRequest.fulfil_tx_id == tx.id
                    )
                )
            )
    db.dispose()
    if as_json:
        out.print_json(json.dumps(data))
        return
    out.print(
        f"request {data['request_id']} on chain {data['chain_id']} "
        f"coordinator {data['coordinator']}: [bold]{data['state']}[/] ({data['mode']} mode)"
    )
    out.print(f"model {data['model_id']}, consumer {data['consumer']}, block {data['block']}")
    table = Table(title="states (the latest time the row entered each)")
    table.add_column("state")
    table.add_column("at (UTC)")
    for name, at in data["timeline"]:
        table.add_row(name, at)
    out.print(table)
    t = data["transaction"]
    if t is None:
        out.print("transaction: none sent")
    else:
        out.print(
            f"transaction {t['tx_hash']}: {t['status']}, nonce {t['nonce']}, "
            f"mined in {t['mined_block']}, fee bumps {len(t['replaced_hashes'])}"
            + (f", answers {len(t['answers'])} requests" if len(t["answers"]) > 1 else "")
            + (f", error {t['error']}" if t["error"] else "")
        )
    p = data["proof"]
    if p is not None:
        out.print(
            f"proof: {p['bytes']} bytes, {p['attempts']} attempt(s), {p['prove_s']} s, "
            f"deviation {p['circuit_deviation']}"
        )
    if data["error"]:
        out.print(f"error ({data['error_reason']}): {data['error']}")


def _detail(row: InferenceRequest, tx: Transaction | None) -> dict[str, Any]:
    timeline = [(name, _iso(getattr(row, col))) for name, col in TIMELINE]
    return {
        **_summary(row),
        "consumer": row.consumer,
        "block": row.block_number,
        "fulfilled_block": row.fulfilled_block,
        "attempts": row.attempts,
        "inference_s": row.inference_s,
        "callback_succeeded": row.callback_succeeded,
        "timeline": [(name, at) for name, at in timeline if at is not None],
        "transaction": None
        if tx is None
        else {
            "tx_hash": tx.tx_hash,
            "nonce": tx.nonce,
            "status": tx.status,
            "broadcast_block": tx.broadcast_block,
            "mined_block": tx.mined_block,
            "max_fee_per_gas": tx.max_fee_per_gas,
            "replaced_hashes": list(tx.replaced_hashes or []),
            "error": tx.error,
        },
        "proof": None
        if row.proof is None and row.proof_attempts == 0
        else {
            "bytes": len(row.proof or b""),
            "attempts": row.proof_attempts,
            "prove_s": row.prove_s,
            "circuit_deviation": row.circuit_deviation,
        },
    }


@requests_app.command("retry")
def retry(
    ctx: typer.Context,
    request_id: IdArg,
    chain_id: ChainOpt = None,
    coordinator: CoordOpt = None,
) -> None:
    """Send an abandoned or unserved request through the pipeline again.

    The row goes back to ``seen`` with its attempts, error and answer cleared; the node's
    redispatcher hands it to a worker within about 30 s. A request no longer pending on
    chain (answered elsewhere, expired) is abandoned again when the relayer simulates it."""
    db = _db(ctx)
    with db.session() as s:
        row = _one(s, request_id, chain_id, coordinator)
        if row.status not in {st.value for st in RETRYABLE}:
            fail(
                f"request {request_id} is {row.status}: only "
                f"{' or '.join(st.value for st in RETRYABLE)} requests can be retried"
            )
        tx = s.get(Transaction, row.fulfil_tx_id) if row.fulfil_tx_id is not None else None
        if tx is not None and tx.status not in SETTLED_FAILED_TX:
            fail(f"request {request_id}'s transaction {tx.tx_hash} is {tx.status}: not retried")
        written = update_request_if(
            s,
            row.id,
            {
                "status": RequestStatus.SEEN.value,
                "seen_at": utcnow(),
                "error": None,
                "output": None,
                "reference_output": None,
                "proof": None,
                "attempts": 0,
                "proof_attempts": 0,
                "fulfil_reverts": 0,
                "fulfil_tx_id": None,
                "callback_succeeded": None,
                "queued_at": None,
                "inferred_at": None,
                "proving_at": None,
                "proved_at": None,
                "submitted_at": None,
                "confirmed_at": None,
            },
            statuses=(row.status,),
            fulfil_tx_id=row.fulfil_tx_id,
        )
    db.dispose()
    if not written:
        fail(f"request {request_id} changed while retrying it: look again with `show`", code=1)
    out.print(f"request {request_id} is seen again: the node hands it to a worker shortly")
