"""Zk-mode benchmark: proof latency, verification gas, verifier size, calibration effects.

Everything is measured in one run against a reference taken in the same run:
  - the node's proof latency (witness from on-chain integers, prove, local verify, as the
    prover worker runs it) / bare ``ezkl.prove`` on the same witness; target <= 1.1
  - verifier execution gas / the Groth16 reference 181,150 + 6,150 * l (l = public
    instances); target <= 2.0. Execution gas excludes the 21,000 intrinsic gas and the
    calldata, like the reference (pairing and MSM precompiles only); both are printed.
  - verifier runtime bytecode / 24,576 bytes (EIP-170); target <= 0.9
  - prove time / onnxruntime inference time for each shipped model
  - calibration target (resources vs accuracy): logrows, prove time, fidelity

It builds circuits in a temporary store with a development SRS (insecure, local only).

    .venv/bin/python bench/zk.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account

from oracle.chain.deploy import deploy_artifact
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.processes import Anvil
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore, inspect_onnx
from oracle.paths import ROOT

MODELS = [
    (ROOT / "models" / "example_mlp.onnx", ROOT / "models" / "example_mlp.calibration.json"),
]
EIP170 = 24_576
# Calibration choices compared: EZKL's two targets, and a forced coarse input scale.
CALIBRATIONS: list[tuple[str, tuple[int, ...] | None]] = [
    ("resources", None),
    ("accuracy", None),
    ("resources", (7,)),
]


def groth16_reference(instances: int) -> int:
    return 181_150 + 6_150 * instances


def onnxruntime_s(path: Path, x: np.ndarray[Any, Any], repeats: int = 2000) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    feed = x.astype(np.float32).reshape(1, -1)
    for _ in range(100):
        session.run(None, {name: feed})
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {name: feed})
    return (time.perf_counter() - start) / repeats


def test_inputs(calibration: Path, width: int, n: int, seed: int = 5) -> list[list[float]]:
    """Fresh inputs drawn from the calibration data's range (not the calibration rows)."""
    values = [float(v) for row in json.loads(calibration.read_text())["input_data"] for v in row]
    rng = np.random.default_rng(seed)
    return [list(rng.uniform(min(values), max(values), size=width)) for _ in range(n)]


def measure_model(
    onnx_path: Path,
    calibration: Path,
    target: str,
    scales: tuple[int, ...] | None,
    work: Path,
    w3: Any,
    account: Any,
    repeats: int,
) -> dict[str, Any]:
    label = target + (f", scale {scales[0]}" if scales else "")
    tag = label.replace(", ", "-").replace(" ", "")
    store = ArtifactStore(work / f"store-{tag}")
    params = zk.CircuitParams(
        target="accuracy" if target == "accuracy" else "resources", scales=scales
    )
    onnx_hash, manifest = onboarding.build(
        store, onnx_path, calibration, onboarding.SrsChoice(dev=True), params, lambda _: None
    )
    files, _ = onboarding.check_circuit(store, onnx_hash)
    srs = onboarding.srs_dir(store) / manifest.srs
    prover = zk.Prover(files, srs, work / f"prover-{tag}")
    scale = 1 << manifest.input_scale
    width = inspect_onnx(onnx_path).input_length
    inputs = [[round(v * scale) for v in x] for x in test_inputs(calibration, width, repeats)]

    # Fidelity against onnxruntime's float output, on the same inputs.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    node_s, bare_s, deviations = [], [], []
    proof: zk.Proof | None = None
    for i, q in enumerate(inputs):
        started = time.perf_counter()
        proof = prover.prove(q, f"bench{i}")
        node_s.append(time.perf_counter() - started)
        x = (np.array(q, dtype=np.float64) / scale).astype(np.float32).reshape(1, -1)
        ref = session.run(None, {name: x})[0].reshape(-1)
        deviations.append(
            max(
                abs(o / (1 << manifest.output_scale) - float(r))
                for o, r in zip(proof.output, ref, strict=True)
            )
        )
        # The reference: bare ezkl.prove on a witness made the same way.
        data = work / "bare.input.json"
        witness = work / "bare.witness.json"
        data.write_text(json.dumps({"input_data": [[v / scale for v in q]]}))
        zk.gen_witness(data, files, witness)
        bare_s.append(zk.bare_prove(witness, files, srs, work / "bare.proof.json"))
    if proof is None:
        raise SystemExit("no inputs")

    artifact = json.loads((files.root / onboarding.VERIFIER_ARTIFACT).read_text())
    verifier = deploy_artifact(w3, account, artifact)
    contract = w3.eth.contract(address=verifier, abi=artifact["abi"])
    data_hex = contract.encode_abi("verifyProof", args=[proof.proof, proof.instances])
    calldata = bytes.fromhex(data_hex[2:])
    tx_gas = int(w3.eth.estimate_gas({"from": account.address, "to": verifier, "data": data_hex}))
    calldata_gas = sum(16 if b else 4 for b in calldata)
    exec_gas = tx_gas - 21_000 - calldata_gas
    ell = len(proof.instances)
    x0 = np.array(inputs[0], dtype=np.float64) / scale
    ort_s = onnxruntime_s(onnx_path, x0)
    return {
        "model": onnx_path.name,
        "onnx_hash": onnx_hash[:10],
        "target": label,
        "logrows": manifest.logrows,
        "scales": f"{manifest.input_scale}/{manifest.output_scale}",
        "node_proof_s": statistics.median(node_s),
        "bare_prove_s": statistics.median(bare_s),
        "latency_ratio": statistics.median(node_s) / statistics.median(bare_s),
        "exec_gas": exec_gas,
        "tx_gas": tx_gas,
        "instances": ell,
        "groth16_ref": groth16_reference(ell),
        "gas_ratio": exec_gas / groth16_reference(ell),
        "gas_ratio_incl_calldata": (tx_gas - 21_000) / groth16_reference(ell),
        "bytecode": manifest.verifier_runtime_bytes,
        "bytecode_ratio": manifest.verifier_runtime_bytes / EIP170,
        "pk_mb": files.pk.stat().st_size / 2**20,
        "onnxruntime_s": ort_s,
        "prove_over_onnxruntime": statistics.median(bare_s) / ort_s,
        "max_deviation": max(deviations),
        "mean_deviation": statistics.mean(deviations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    account = Account.from_key(ANVIL_DEV_KEYS[0])  # anvil's public development key
    with tempfile.TemporaryDirectory(prefix="oracle-zk-bench-") as tmp:
        work = Path(tmp)
        anvil = Anvil(work / "anvil.log")
        anvil.start()
        try:
            rows = [
                measure_model(onnx, cal, target, scales, work, anvil.w3(), account, args.repeats)
                for onnx, cal in MODELS
                for target, scales in CALIBRATIONS
            ]
        finally:
            anvil.stop()
    print()
    print("| model | target | logrows | scales | node proof s | bare prove s | ratio (<=1.1) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['target']} | {r['logrows']} | {r['scales']} | "
            f"{r['node_proof_s']:.4f} | {r['bare_prove_s']:.4f} | {r['latency_ratio']:.3f} |"
        )
    print()
    print(
        "| model | target | instances | exec gas | Groth16 ref | ratio (<=2.0) | "
        "tx gas - 21000 | ratio incl. calldata | bytecode | /24576 (<=0.9) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['target']} | {r['instances']} | {r['exec_gas']:,} | "
            f"{r['groth16_ref']:,} | {r['gas_ratio']:.2f} | {r['tx_gas'] - 21000:,} | "
            f"{r['gas_ratio_incl_calldata']:.2f} | {r['bytecode']:,} | {r['bytecode_ratio']:.2f} |"
        )
    print()
    print(
        "| model | target | onnxruntime us | bare prove s | prove/onnxruntime | pk MB | "
        "max |circuit-float| | mean |circuit-float| |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['target']} | {r['onnxruntime_s'] * 1e6:.1f} | "
            f"{r['bare_prove_s']:.4f} | {r['prove_over_onnxruntime']:,.0f} | {r['pk_mb']:.1f} | "
            f"{r['max_deviation']:.2e} | {r['mean_deviation']:.2e} |"
        )


if __name__ == "__main__":
    main()
