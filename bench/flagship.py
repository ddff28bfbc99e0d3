"""The flagship model in Zk mode, end to end: onboard, prove, verify on chain, accuracy.

``models/digits/digits_mlp.onnx`` (8x8 handwritten digits, 64 -> 32 -> 10, 2,410
parameters; ``models/digits/train.py``) is onboarded with the default ``zk`` settings and a
development SRS (insecure, local only) against a fresh anvil: circuit, keys, verifier
deployed, model registered. Then:
  - prove one held-out image in a child process, as a prover worker does (witness from the
    on-chain integers, prove, local verify): wall time and the child's peak resident memory
    (``ru_maxrss`` from ``os.wait4``), next to a child that loads the same prover and does
    not prove (the import/load baseline); repeated ``--repeats`` times, median time.
  - request that image through ``ExampleConsumer`` in Zk mode and fulfil with the proof
    through the Coordinator: gas of the fulfilment, the verifier's execution gas alone
    (``eth_estimateGas`` against the verifier, less intrinsic and calldata gas) against the
    Coordinator's VERIFIER_GAS_LIMIT of 1,500,000, and that the consumer's callback ran.
  - accuracy on the 360 held-out images: onnxruntime's float arg-max, the circuit's
    arg-max (a witness per image, the integers a proof would post), their agreement and the
    largest |circuit - float| logit difference.

    .venv/bin/python bench/flagship.py [--repeats 3]      # make bench-flagship
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import ETHER, deploy_stack, register_node, send, serve_model
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.processes import Anvil
from oracle.models import onboarding, zk
from oracle.paths import ROOT
from oracle.settings import ZkSettings

OWNER, NODE, USER = (Account.from_key(k) for k in ANVIL_DEV_KEYS[:3])
MODEL_DIR = ROOT / "models" / "digits"
ONNX = MODEL_DIR / "digits_mlp.onnx"
CALIBRATION = MODEL_DIR / "calibration.json"
HELD_OUT = MODEL_DIR / "held_out.json"
CALLBACK_GAS = 500_000  # ExampleConsumer stores the 10 logits: 10 fresh slots
VERIFIER_GAS_LIMIT = 1_500_000  # solidity/src/Coordinator.sol
ZK_MODE = 1

# Run in a child process: load the prover, prove, print timings and peak memory as JSON.
# Peak memory is the kernel's high-water mark of the child's own address space (VmHWM): it
# starts afresh at exec. ru_maxrss from wait4 does not: Linux keeps the forked parent's
# figure across exec, so a child of this (large) process would report at least its size.
CHILD = """
import json, sys, time
from pathlib import Path

def hwm_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")

from oracle.models import zk
root, srs, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
inputs = json.loads(sys.argv[4])
prover = zk.Prover(zk.CircuitFiles(root), srs, work)
loaded = hwm_mib()
started = time.perf_counter()
p = prover.prove(inputs, "flagship")
out = {"total_s": time.perf_counter() - started, "witness_s": p.witness_s,
       "prove_s": p.prove_s, "verify_s": p.verify_s, "output": p.output,
       "proof": p.proof.hex(), "instances": [str(i) for i in p.instances],
       "loaded_mib": loaded, "peak_mib": hwm_mib()}
print(json.dumps(out))
"""


def params_from_defaults() -> zk.CircuitParams:
    """The circuit parameters ``oracle model register --zk`` uses with default settings."""
    s = ZkSettings()
    return zk.CircuitParams(
        target=s.target,
        num_inner_cols=s.num_inner_cols,
        decomp_base=s.decomp_base,
        decomp_legs=s.decomp_legs,
        max_logrows=s.max_logrows,
        max_prover_memory_mb=s.max_prover_memory_mb,
    )


def prove_in_child(files: zk.CircuitFiles, srs: Path, work: Path, inputs: list[int]) -> Any:
    """Run CHILD in a fresh interpreter; returns its JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-c", CHILD, str(files.root), str(srs), str(work), json.dumps(inputs)]
    done = subprocess.run(argv, stdout=subprocess.PIPE, env=env, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"prover child failed with {done.returncode}")
    return json.loads(done.stdout)


def held_out() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    body = json.loads(HELD_OUT.read_text())
    x = np.array(body["pixels"], dtype=np.float64) / float(body["scale"])
    return x, np.array(body["labels"], dtype=np.int64)


def accuracy(prover: zk.Prover, scale_in: int, scale_out: int) -> dict[str, Any]:
    x, y = held_out()
    q = np.round(x * (1 << scale_in)).astype(np.int64)
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    xf = (q.astype(np.float64) / (1 << scale_in)).astype(np.float32)
    ref = np.concatenate([session.run(None, {name: row.reshape(1, -1)})[0] for row in xf])
    started = time.perf_counter()
    circ = np.array(
        [prover.circuit_output([int(v) for v in row], f"acc{i}") for i, row in enumerate(q)],
        dtype=np.float64,
    ) / (1 << scale_out)
    witness_s = (time.perf_counter() - started) / len(q)
    return {
        "images": len(y),
        "onnxruntime_accuracy": float(np.mean(ref.argmax(1) == y)),
        "circuit_accuracy": float(np.mean(circ.argmax(1) == y)),
        "argmax_agreement": float(np.mean(circ.argmax(1) == ref.argmax(1))),
        "max_abs_logit_diff": float(np.abs(circ - ref).max()),
        "witness_s_per_image": witness_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    compile_contracts()
    with tempfile.TemporaryDirectory(prefix="bench-flagship-") as tmp:
        work = Path(tmp)
        anvil = Anvil(work / "anvil.log")
        anvil.start()
        try:
            result = measure(anvil, work, args.repeats)
        finally:
            anvil.stop()
    print(json.dumps(result, indent=1))
    print()
    print("| figure | value |")
    print("|---|---|")
    for key, value in result.items():
        shown = str(value)
        if isinstance(value, float):
            shown = f"{value:,.4f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            shown = f"{value:,}"
        print(f"| {key} | {shown} |")


def measure(anvil: Anvil, work: Path, repeats: int) -> dict[str, Any]:
    w3 = anvil.w3()
    dep = deploy_stack(w3, OWNER, anvil.url)
    coord = CoordinatorClient(w3, dep.coordinator)
    register_node(w3, NODE, dep.coordinator, ETHER)
    from oracle.models.store import ArtifactStore

    store = ArtifactStore(work / "models")
    started = time.perf_counter()
    done = onboarding.onboard(
        None,
        store,
        coord,
        OWNER,
        ONNX,
        CALIBRATION,
        onboarding.SrsChoice(dev=True),
        params_from_defaults(),
    )
    onboard_s = time.perf_counter() - started
    serve_model(w3, NODE, dep.coordinator, done.model_id)
    files, manifest = onboarding.check_circuit(store, done.manifest.onnx_hash)
    srs = onboarding.srs_dir(store) / manifest.srs

    x, y = held_out()
    image = [round(float(v) * (1 << manifest.input_scale)) for v in x[0]]
    runs = [prove_in_child(files, srs, work / "prove", image) for _ in range(repeats)]
    proof = runs[-1]

    # On chain: the verifier alone, then the whole Zk fulfilment through the Coordinator.
    artifact = json.loads((files.root / onboarding.VERIFIER_ARTIFACT).read_text())
    verifier = w3.eth.contract(address=done.verifier, abi=artifact["abi"])
    proof_bytes = bytes.fromhex(proof["proof"])
    instances = [int(i) for i in proof["instances"]]
    data_hex = verifier.encode_abi("verifyProof", args=[proof_bytes, instances])
    tx_gas = int(w3.eth.estimate_gas({"from": NODE.address, "to": done.verifier, "data": data_hex}))
    calldata = bytes.fromhex(data_hex[2:])
    verifier_exec_gas = tx_gas - 21_000 - sum(16 if b else 4 for b in calldata)

    consumer = w3.eth.contract(
        address=dep.example_consumer, abi=load_artifact("ExampleConsumer").abi
    )
    fee = coord.quote_fee(done.model_id, ZK_MODE, CALLBACK_GAS)
    fn = consumer.functions.requestPrediction(
        bytes.fromhex(done.model_id[2:]), image, ZK_MODE, CALLBACK_GAS
    )
    receipt = send(w3, USER, fn, value=fee)
    (req,) = coord.requested_in_receipt(receipt)
    fn = coord.contract.functions.fulfill(req.as_tuple(), proof["output"], b"", proof_bytes)
    fulfil = send(w3, NODE, fn)
    (fulfilled,) = coord.contract.events.InferenceFulfilled().process_receipt(
        fulfil, errors=DISCARD
    )
    if list(fulfilled["args"]["output"]) != proof["output"]:
        raise SystemExit("the Coordinator delivered another output than the proof's")

    prover = zk.Prover(files, srs, work / "acc")
    acc = accuracy(prover, manifest.input_scale, manifest.output_scale)
    return {
        "model": ONNX.name,
        "parameters": 64 * 32 + 32 + 32 * 10 + 10,
        "onnx_hash": manifest.onnx_hash[:18],
        "logrows": manifest.logrows,
        "scales (in/out)": f"{manifest.input_scale}/{manifest.output_scale}",
        "onboard_s (circuit, dev SRS, keys, verifier, deploy, register)": onboard_s,
        "prove_s (ezkl.prove, median)": statistics.median(r["prove_s"] for r in runs),
        "node proof_s (witness + prove + local verify, median)": statistics.median(
            r["total_s"] for r in runs
        ),
        "prover peak RSS MiB (child VmHWM, max)": max(r["peak_mib"] for r in runs),
        "prover RSS MiB before proving (imports + prover loaded)": max(
            r["loaded_mib"] for r in runs
        ),
        "estimated prover memory MiB (zk.est_prover_memory_mb)": zk.CircuitInfo.read(
            files.settings
        ).est_prover_memory_mb,
        "pk MiB": files.pk.stat().st_size / 2**20,
        "verifier runtime bytes": manifest.verifier_runtime_bytes,
        "public instances": len(instances),
        "verifier exec gas": verifier_exec_gas,
        "verifier exec gas / VERIFIER_GAS_LIMIT": verifier_exec_gas / VERIFIER_GAS_LIMIT,
        "Zk fulfil tx gas (Coordinator)": int(fulfil["gasUsed"]),
        "callback succeeded": bool(fulfilled["args"]["callbackSucceeded"]),
        "label of the proved image": int(y[0]),
        "proved arg-max": int(np.argmax(proof["output"])),
        **acc,
    }


if __name__ == "__main__":
    main()
