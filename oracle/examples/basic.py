"""`make demo`: the whole oracle on a local chain, answering the example consumer."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from web3.logs import DISCARD

from oracle.chain.client import CoordinatorClient, connect
from oracle.dev.requester import Requester
from oracle.dev.stack import LocalStack
from oracle.examples import onboard_with_dev_srs
from oracle.fixedpoint import from_fixed, to_fixed
from oracle.paths import ROOT
from oracle.types import Mode

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"
CALIBRATION = ROOT / "models" / "example_mlp.calibration.json"
CALLBACK_GAS = 300_000
ZK_EVERY = 4  # every 4th request asks for Zk mode (a proof checked on chain)


def run_demo(n: int, block_time: float | None, workdir: Path | None, console: Console) -> int:
    """Run the demo; return how many requests were fulfilled."""
    with tempfile.TemporaryDirectory(prefix="oracle-demo-") as tmp:
        stack = LocalStack(workdir or Path(tmp), block_time=block_time)
        console.print(
            "[bold]starting local stack[/] (anvil, redis-server, contracts, worker, node)"
        )
        with stack:
            return _drive(stack, n, console)


def _drive(stack: LocalStack, n: int, console: Console) -> int:
    settings = stack.settings()
    w3 = connect(settings.chain.rpc_url)
    coordinator = CoordinatorClient(w3, settings.coordinator_address())
    console.print("onboarding the example model for Zk mode (EZKL circuit, keys, verifier)")
    onboarded = onboard_with_dev_srs(stack, coordinator, EXAMPLE_MODEL, CALIBRATION, console)
    model_id, scale = onboarded.model_id, onboarded.manifest.input_scale
    out_scale = onboarded.manifest.output_scale
    console.print(
        f"registered example model {model_id} (scales {scale}/{out_scale}, "
        f"verifier {onboarded.verifier})",
        soft_wrap=True,
    )
    requester = Requester.from_settings(settings)
    rng = np.random.default_rng(2026)
    inputs = rng.uniform(-1, 1, size=(n, 4)).round(3)
    sent: list[dict[str, Any]] = []
    nonce = w3.eth.get_transaction_count(requester.account.address, "pending")
    for i, row in enumerate(inputs):
        mode = Mode.ZK if i % ZK_EVERY == ZK_EVERY - 1 else Mode.NONE
        values = [to_fixed(float(v), scale) for v in row]
        fn = requester.consumer.functions.requestPrediction(
            bytes.fromhex(model_id[2:]), values, int(mode), CALLBACK_GAS
        )
        tx = fn.build_transaction(
            {
                "from": requester.account.address,
                "value": coordinator.quote_fee(model_id, mode, CALLBACK_GAS),
                "nonce": nonce + i,
                "chainId": w3.eth.chain_id,
                "gas": 400_000,
            }
        )
        tx_hash = w3.eth.send_raw_transaction(
            requester.account.sign_transaction(tx).raw_transaction
        )
        sent.append({"tx": tx_hash, "input": row, "mode": mode, "sent_at": time.monotonic()})
    console.print(f"sent {n} requests from the example consumer; waiting for callbacks")
    for item in sent:
        receipt = w3.eth.wait_for_transaction_receipt(item["tx"], timeout=120, poll_latency=0.05)
        ev = requester.consumer.events.PredictionRequested().process_receipt(
            receipt, errors=DISCARD
        )
        item["request_id"] = int(ev[0]["args"]["requestId"])
        item["block"] = int(receipt["blockNumber"])
    pending = {item["request_id"]: item for item in sent}
    received = requester.consumer.events.PredictionReceived()
    deadline = time.monotonic() + 60 + 3 * n * (stack.block_time or 0.2)
    from_block = min(item["block"] for item in sent)
    while pending and time.monotonic() < deadline:
        for log in w3.eth.get_logs(
            {
                "address": requester.consumer.address,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [received.topic],
            }
        ):
            ev = received.process_log(log)
            rid = int(ev["args"]["requestId"])
            hit = pending.pop(rid) if rid in pending else None
            if hit is not None:
                hit["done_at"] = time.monotonic()
                hit["fulfil_block"] = int(ev["blockNumber"])
                hit["output"] = [int(v) for v in ev["args"]["output"]]
                hit["err"] = bytes(ev["args"]["err"]).decode(errors="replace")
        time.sleep(0.1)
    _print_table(sent, out_scale, console)
    done = sum(1 for item in sent if "done_at" in item and not item["err"])
    zk_done = sum(1 for i in sent if i["mode"] == Mode.ZK and "done_at" in i and not i["err"])
    zk_sent = sum(1 for i in sent if i["mode"] == Mode.ZK)
    console.print(
        f"demo: {done}/{n} requests fulfilled ({zk_done}/{zk_sent} in Zk mode, "
        "each with an EZKL proof checked by the verifier contract)"
    )
    return done


def _print_table(sent: list[dict[str, Any]], scale: int, console: Console) -> None:
    table = Table(title="example consumer requests")
    for col in ("request", "mode", "input", "output", "blocks", "latency (s)"):
        table.add_column(col, justify="right" if col not in ("input", "mode") else "left")
    for item in sent:
        if "done_at" in item:
            out = (
                f"[red]{item['err']}[/]"
                if item["err"]
                else ", ".join(f"{from_fixed(v, scale):.4f}" for v in item["output"])
            )
            table.add_row(
                str(item["request_id"]),
                item["mode"].name,
                " ".join(f"{v:+.2f}" for v in item["input"]),
                out,
                str(item["fulfil_block"] - item["block"]),
                f"{item['done_at'] - item['sent_at']:.2f}",
            )
        else:
            table.add_row(
                str(item.get("request_id", "?")),
                item["mode"].name,
                " ".join(f"{v:+.2f}" for v in item["input"]),
                "[red]no callback[/]",
                "-",
                "-",
            )
    console.print(table)
