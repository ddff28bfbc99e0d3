"""Models: ``oracle model register`` (plain, or with an EZKL circuit for Zk mode) and
``oracle model serve`` (declare on chain that this node serves a model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from oracle.cli.common import (
    err,
    fail,
    model_app,
    out,
)
from oracle.settings import Settings


@model_app.command("register")
def model_register(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The model's .onnx file.")],
    input_scale: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="Input fixed-point bits (plain: default 16; "
            "--zk: the scale calibration must use).",
        ),
    ] = None,
    output_scale: Annotated[
        int | None, typer.Option(min=0, max=64, help="Output fixed-point bits (plain only).")
    ] = None,
    zk_mode: Annotated[
        bool, typer.Option("--zk", help="Build an EZKL circuit and verifier: allows Zk mode.")
    ] = False,
    calibration: Annotated[
        Path | None, typer.Option(help='--zk: JSON {"input_data": [[...]]} to calibrate on.')
    ] = None,
    srs: Annotated[
        Path | None, typer.Option(help="--zk: the public KZG parameters (SRS) file.")
    ] = None,
    dev_srs: Annotated[
        bool, typer.Option("--dev-srs", help="--zk: make a local INSECURE SRS (development).")
    ] = False,
    target: Annotated[
        str | None, typer.Option(help="--zk calibration target: resources or accuracy.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Store a model by hash and register it on chain; prints the modelId."""
    from oracle.chain.client import CoordinatorClient, connect
    from oracle.db import Database
    from oracle.models.registration import register_model
    from oracle.models.store import ArtifactStore

    if not path.is_file():
        fail(f"{path} is not a file")
    if path.suffix.lower() != ".onnx":
        fail(f"{path} does not look like an ONNX file (expected a .onnx suffix)")
    if zk_mode:
        _check_zk_options(output_scale, calibration, srs, dev_srs, target)
    elif calibration or srs or dev_srs or target:
        fail("--calibration, --srs, --dev-srs and --target only apply with --zk")
    settings = ctx.obj.settings()
    w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
    db = Database(settings.db.url)
    store = ArtifactStore(settings.store.path)
    coordinator = CoordinatorClient(w3, settings.coordinator_address())
    if zk_mode and calibration is not None:
        result = _register_zk(
            settings,
            db,
            store,
            coordinator,
            _registrar(w3, settings),
            path,
            calibration,
            srs,
            dev_srs,
            input_scale,
            target,
            as_json,
        )
        _publish(settings, result["onnx_hash"], circuit=True)
        if as_json:
            out.print_json(json.dumps(result))
        else:
            out.print(result["model_id"], highlight=False)
        return
    model_id, created = register_model(
        db if db.is_current() else None,
        store,
        coordinator,
        _registrar(w3, settings),
        path,
        16 if input_scale is None else input_scale,
        16 if output_scale is None else output_scale,
    )
    from oracle.models.store import onnx_hash_of

    _publish(settings, onnx_hash_of(path), circuit=False)
    if as_json:
        out.print_json(json.dumps({"model_id": model_id, "newly_registered": created}))
    else:
        out.print(model_id, highlight=False)


def _publish(settings: Settings, onnx_hash: str, circuit: bool) -> None:
    """With a shared store (store.s3), upload the model file (and its circuit) there, so
    workers on other hosts can fetch them by hash."""
    from oracle.models.remote import shared_store

    shared = shared_store(settings.store)
    if shared is None:
        return
    shared.publish_model(onnx_hash)
    if circuit:
        shared.publish_circuit(onnx_hash)


def _check_zk_options(
    output_scale: int | None,
    calibration: Path | None,
    srs: Path | None,
    dev_srs: bool,
    target: str | None,
) -> None:
    if output_scale is not None:
        fail("--output-scale does not apply with --zk: the circuit decides it")
    if calibration is None:
        fail("--zk needs --calibration DATA.json")
    if (srs is None) == (not dev_srs):
        fail("--zk needs exactly one of --srs FILE or --dev-srs")
    if srs is not None and not srs.is_file():
        fail(f"SRS file {srs} does not exist")
    if target is not None and target not in ("resources", "accuracy"):
        fail(f"--target must be resources or accuracy, not {target!r}")


def _register_zk(
    settings: Settings,
    db: Any,
    store: Any,
    coordinator: Any,
    account: Any,
    path: Path,
    calibration: Path,
    srs: Path | None,
    dev_srs: bool,
    input_scale: int | None,
    target: str | None,
    quiet: bool,
) -> dict[str, Any]:
    from oracle.models import onboarding, zk

    params = zk.CircuitParams(
        target="accuracy" if (target or settings.zk.target) == "accuracy" else "resources",
        scales=(input_scale,) if input_scale is not None else None,
        num_inner_cols=settings.zk.num_inner_cols,
        decomp_base=settings.zk.decomp_base,
        decomp_legs=settings.zk.decomp_legs,
        max_logrows=settings.zk.max_logrows,
        max_prover_memory_mb=settings.zk.max_prover_memory_mb,
    )
    console = err if quiet else out
    with console.status("onboarding", spinner="dots") as status:

        def progress(step: str) -> None:
            style = "bold yellow" if step == zk.DEV_SRS_WARNING else "dim"
            console.print(f"[{style}]- {step}[/]", highlight=False)
            status.update(step)

        done = onboarding.onboard(
            db if db.is_current() else None,
            store,
            coordinator,
            account,
            path,
            calibration,
            onboarding.SrsChoice(path=srs, dev=dev_srs),
            params,
            progress,
        )
    if done.manifest.dev_srs:
        err.print(f"[bold yellow]warning:[/] {zk.DEV_SRS_WARNING}", highlight=False)
    return {
        "model_id": done.model_id,
        "onnx_hash": done.manifest.onnx_hash,
        "newly_registered": done.newly_registered,
        "verifier": done.verifier,
        "logrows": done.manifest.logrows,
        "input_scale": done.manifest.input_scale,
        "output_scale": done.manifest.output_scale,
        "dev_srs": done.manifest.dev_srs,
        "verifier_runtime_bytes": done.manifest.verifier_runtime_bytes,
        "circuit_dir": str(done.circuit_dir),
    }


@model_app.command("serve")
def model_serve(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="The model id (0x + 64 hex digits).")],
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop serving it: no new request is assigned here.")
    ] = False,
) -> None:
    """Declare with the node's signer that this node serves MODEL_ID (the node does it on
    start for every model it holds). Sent from the signer: run it while the node is stopped."""
    from oracle.chain.client import CoordinatorClient, connect
    from oracle.chain.deploy import send
    from oracle.chain.signer import load_signer
    from oracle.node.serving import declare_served

    settings = ctx.obj.settings()
    account = load_signer(settings.signer)
    coordinator = CoordinatorClient(
        connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s),
        settings.coordinator_address(),
    )
    if not stop:
        declared = declare_served(coordinator, account, [model_id])
        out.print("declared" if declared else "already served (or node inactive / unknown model)")
        return
    raw = bytes.fromhex(model_id.removeprefix("0x"))
    if coordinator.contract.functions.isServingModel(raw, account.address).call():
        send(coordinator.w3, account, coordinator.contract.functions.stopServingModel(raw))
    out.print("not serving")


def _registrar(w3: Any, settings: Settings) -> Any:
    """Who pays for registration: $ORACLE_REGISTRAR_KEY, anvil's dev deployer, else the signer.

    Keeping it off the node's signer (when possible) leaves the relayer's nonces alone.
    """
    from eth_account import Account

    from oracle.chain.signer import load_signer
    from oracle.dev.keys import DEPLOYER_KEY
    from oracle.dev.requester import ANVIL_CHAIN_IDS

    if settings.registrar_key is not None:
        try:
            return Account.from_key(settings.registrar_key.get_secret_value())
        except ValueError:
            fail("ORACLE_REGISTRAR_KEY is not a valid private key")
    if int(w3.eth.chain_id) in ANVIL_CHAIN_IDS:
        return Account.from_key(DEPLOYER_KEY)  # anvil's public development key
    return load_signer(settings.signer)
