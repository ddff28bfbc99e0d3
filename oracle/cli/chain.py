"""Talking to a chain: ``oracle deploy``, ``oracle request``, ``oracle contracts build``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from oracle.cli.common import (
    app,
    contracts_app,
    fail,
    out,
)


@app.command()
def deploy(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="Deployment file to write.")],
    if_missing: Annotated[bool, typer.Option(help="Do nothing if --out already exists.")] = False,
    stake: Annotated[
        float, typer.Option(min=0, help="ETH the signer stakes as a node (0: skip).")
    ] = 1.0,
) -> None:
    """Deploy a Coordinator and the example consumer ($ORACLE_DEPLOYER_KEY pays), stake the node."""
    from eth_account import Account

    from oracle.chain.client import connect
    from oracle.chain.deploy import deploy_stack, register_node
    from oracle.chain.signer import load_signer
    from oracle.dev.keys import DEPLOYER_KEY
    from oracle.dev.requester import ANVIL_CHAIN_IDS

    if if_missing and out_file.exists():
        out.print(f"{out_file} exists; nothing to do")
        return
    settings = ctx.obj.settings()
    w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
    key = settings.deployer_key.get_secret_value() if settings.deployer_key else None
    if not key:
        if int(w3.eth.chain_id) not in ANVIL_CHAIN_IDS:
            fail("set ORACLE_DEPLOYER_KEY to the key that deploys and owns the Coordinator")
        key = DEPLOYER_KEY  # anvil's public development key
    deployment = deploy_stack(w3, Account.from_key(key), settings.chain.rpc_url)
    deployment.write(out_file)
    if stake > 0:
        register_node(w3, load_signer(settings.signer), deployment.coordinator, int(stake * 10**18))
    out.print(f"Coordinator {deployment.coordinator}; deployment written to {out_file}")


@contracts_app.command("build")
def contracts_build(force: bool = False) -> None:
    """Compile solidity/src with the pinned solc from npm into solidity/out."""
    from oracle.chain.compile import compile_contracts

    path = compile_contracts(force=force)
    out.print(f"artifacts in {path}")


@app.command()
def request(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="0x + 64 hex digits.")],
    input_values: Annotated[str, typer.Option("--input", "-i", help="Comma-separated numbers.")],
    raw: Annotated[bool, typer.Option(help="Values are already fixed-point integers.")] = False,
    mode: Annotated[
        str,
        typer.Option(
            help="none, zk or optimistic (the callback comes after the challenge window)."
        ),
    ] = "none",
    callback_gas: Annotated[int, typer.Option(min=21_000, max=30_000_000)] = 300_000,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the callback.")] = 60.0,
    consumer: Annotated[str | None, typer.Option(help="Consumer (default: the example).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Send a request through the example consumer and wait for its callback."""
    from oracle.dev.requester import Requester, parse_mode, parse_values
    from oracle.types import parse_model_id

    try:
        mid = parse_model_id(model_id)
        mode_value = parse_mode(mode)
        values = parse_values(input_values, raw)
    except ValueError as exc:
        fail(str(exc))
    result = Requester.from_settings(ctx.obj.settings(), consumer).request_and_wait(
        mid, values, raw, mode_value, callback_gas, timeout
    )
    if as_json:
        out.print_json(json.dumps(result))
        return
    if result["error"]:
        out.print(f"request {result['request_id']}: [red]error[/] {result['error']}")
        raise typer.Exit(1)
    out.print(
        f"request {result['request_id']}: output {result['output']} "
        f"(raw {result['output_raw']}) after {result['blocks']} block(s)"
    )
