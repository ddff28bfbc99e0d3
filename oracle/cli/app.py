"""The ``oracle`` command line.

Every command turns expected failures (bad arguments, missing settings, an unreachable
chain, a reverted transaction) into a one-line message and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from oracle.errors import OracleError
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


# -- running the node ------------------------------------------------------------------
@app.command()
def node(ctx: typer.Context) -> None:
    """Run the listener and relayer against any RPC and Coordinator (from settings)."""
    from oracle.node import Node

    stop = threading.Event()
    _stop_on_signals(stop)
    Node(ctx.obj.settings()).run_forever(stop)


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
    _stop_on_signals(stop)
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


@app.command("demo-dao")
def demo_dao(
    workdir: Annotated[Path | None, typer.Option(help="State dir (default: a temp dir).")] = None,
) -> None:
    """A DAO whose proposals are screened by a Zk-proved model before they can be queued."""
    from oracle.examples.dao import run_dao_demo

    if not run_dao_demo(_wide(), workdir):
        raise typer.Exit(1)


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
    key = os.environ.get("ORACLE_DEPLOYER_KEY")
    if not key:
        if int(w3.eth.chain_id) not in ANVIL_CHAIN_IDS:
            fail("set ORACLE_DEPLOYER_KEY to the key that deploys and owns the Coordinator")
        key = DEPLOYER_KEY  # anvil's public development key
    deployment = deploy_stack(w3, Account.from_key(key), settings.chain.rpc_url)
    deployment.write(out_file)
    if stake > 0:
        register_node(w3, load_signer(settings.signer), deployment.coordinator, int(stake * 10**18))
    out.print(f"Coordinator {deployment.coordinator}; deployment written to {out_file}")


# -- database, contracts, models ---------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Apply Alembic migrations (the only way the schema is created)."""
    from oracle.db import Database

    settings = ctx.obj.settings()
    Database(settings.db.url).upgrade(revision)
    out.print(f"database at revision {revision}")


@contracts_app.command("build")
def contracts_build(force: bool = False) -> None:
    """Compile solidity/src with the pinned solc from npm into solidity/out."""
    from oracle.chain.compile import compile_contracts

    path = compile_contracts(force=force)
    out.print(f"artifacts in {path}")


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
    if not zk_mode and (calibration or srs or dev_srs or target):
        fail("--calibration, --srs, --dev-srs and --target only apply with --zk")
    if zk_mode:
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
    if as_json:
        out.print_json(json.dumps({"model_id": model_id, "newly_registered": created}))
    else:
        out.print(model_id, highlight=False)


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
        "newly_registered": done.newly_registered,
        "verifier": done.verifier,
        "logrows": done.manifest.logrows,
        "input_scale": done.manifest.input_scale,
        "output_scale": done.manifest.output_scale,
        "dev_srs": done.manifest.dev_srs,
        "verifier_runtime_bytes": done.manifest.verifier_runtime_bytes,
        "circuit_dir": str(done.circuit_dir),
    }


def _registrar(w3: Any, settings: Settings) -> Any:
    """Who pays for registration: $ORACLE_REGISTRAR_KEY, anvil's dev deployer, else the signer.

    Keeping it off the node's signer (when possible) leaves the relayer's nonces alone.
    """
    from eth_account import Account

    from oracle.chain.signer import load_signer
    from oracle.dev.keys import DEPLOYER_KEY
    from oracle.dev.requester import ANVIL_CHAIN_IDS

    key = os.environ.get("ORACLE_REGISTRAR_KEY")
    if key:
        try:
            return Account.from_key(key)
        except ValueError:
            fail("ORACLE_REGISTRAR_KEY is not a valid private key")
    if int(w3.eth.chain_id) in ANVIL_CHAIN_IDS:
        return Account.from_key(DEPLOYER_KEY)  # anvil's public development key
    return load_signer(settings.signer)


@app.command()
def request(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="0x + 64 hex digits.")],
    input_values: Annotated[str, typer.Option("--input", "-i", help="Comma-separated numbers.")],
    raw: Annotated[bool, typer.Option(help="Values are already fixed-point integers.")] = False,
    mode: Annotated[str, typer.Option(help="none, zk or optimistic.")] = "none",
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


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main() -> None:
    """Entry point: expected errors become one line on stderr, never a traceback."""
    try:
        app(standalone_mode=True)
    except OracleError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
