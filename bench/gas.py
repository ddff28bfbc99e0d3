"""Gas of a request and its answer in each mode, with the example MLP's real circuit.

Requests go through ``ExampleConsumer.requestPrediction`` (200k callback gas); fulfilments
are sent by the node as the relayer would: the circuit's output with its EZKL proof (dev
SRS), a Zk error answer, and an optimistic answer posted then finalised after the window
(unchallenged) or proven after a challenge. Prints JSON with the gas of each receipt, the
ratio of an unchallenged optimistic request (request + post + finalize) to a Zk request
(request + fulfill) on the same model, and the runtime sizes of the Coordinator and the
screened Governor. ``make bench-gas``.

Batched fulfilment: 50 plain answers, 10 Zk answers (the same real proof) and 50 plain answers
to a consumer whose callback does no work, each set sent by the node as one ``fulfillBatch``
transaction (the requests made beforehand in their own transactions); gas per answer in the
batch is compared with one ``fulfill`` of the same kind of request, sent once the node's fee
balance is already non-zero (as in steady state: the first fee a node earns also pays for
creating its balance slot). The batch is sent with an explicit gas limit: ``eth_estimateGas``
finds the least gas at which ``fulfillBatch`` succeeds, and a batch short of gas succeeds by
rejecting its last answers (the JSON shows how many the estimate would lose).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    deploy,
    deploy_stack,
    register_node,
    send,
    serve_model,
)
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.processes import Anvil
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT

OWNER, NODE, USER, CHALLENGER = (Account.from_key(k) for k in ANVIL_DEV_KEYS[:4])
PARAMS = CoordinatorParams()
CALLBACK_GAS = 200_000
INPUT = [round(v * (1 << 13)) for v in (0.5, -0.25, 0.75, -1.0)]
PLAIN_BATCH = 50
ZK_BATCH = 10
BATCH_TARGET = 0.6


def main() -> None:
    compile_contracts()
    work = Path(tempfile.mkdtemp(prefix="bench-gas-"))
    anvil = Anvil(work / "anvil.log")
    anvil.start()
    try:
        print(json.dumps(measure(anvil, work), indent=2))
    finally:
        anvil.stop()


def measure(anvil: Anvil, work: Path) -> dict[str, Any]:
    w3 = anvil.w3()
    dep = deploy_stack(w3, OWNER, anvil.url)
    coord = CoordinatorClient(w3, dep.coordinator)
    register_node(w3, NODE, dep.coordinator, ETHER)
    consumer = w3.eth.contract(
        address=Web3.to_checksum_address(dep.example_consumer),
        abi=load_artifact("ExampleConsumer").abi,
    )
    store = ArtifactStore(work / "models")
    done = onboarding.onboard(
        None,
        store,
        coord,
        OWNER,
        ROOT / "models" / "example_mlp.onnx",
        ROOT / "models" / "example_mlp.calibration.json",
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )
    serve_model(w3, NODE, dep.coordinator, done.model_id)
    files, manifest = onboarding.check_circuit(store, done.manifest.onnx_hash)
    prover = zk.Prover(files, onboarding.srs_dir(store) / manifest.srs, work / "prove")
    proof = prover.prove(INPUT, "bench")

    def request(mode: int, via: Any = consumer) -> tuple[RequestStruct, int]:
        fee = coord.quote_fee(done.model_id, mode, CALLBACK_GAS)
        fn = via.functions.requestPrediction(
            bytes.fromhex(done.model_id[2:]), INPUT, mode, CALLBACK_GAS
        )
        receipt = send(w3, USER, fn, value=fee)
        (req,) = coord.requested_in_receipt(receipt)
        return req, int(receipt["gasUsed"])

    def fulfil(req: RequestStruct, output: list[int], err: bytes, proof_bytes: bytes) -> int:
        fn = coord.contract.functions.fulfill(req.as_tuple(), output, err, proof_bytes)
        return int(send(w3, NODE, fn)["gasUsed"])

    out: dict[str, Any] = {}
    req, gas = request(0)
    out["None"] = {"request": gas, "fulfill": fulfil(req, proof.output, b"", b"")}
    req, gas = request(1)
    out["Zk"] = {"request": gas, "fulfill": fulfil(req, proof.output, b"", proof.proof)}
    req, gas = request(1)
    out["Zk error answer"] = {"request": gas, "fulfill": fulfil(req, [], b"bad input", b"")}

    def post(req: RequestStruct) -> tuple[Any, int]:
        fn = coord.contract.functions.postOptimistic(req.as_tuple(), proof.output)
        receipt = send(w3, NODE, fn, value=PARAMS.node_bond)
        (posted,) = coord.posted_in_receipt(receipt)
        return posted, int(receipt["gasUsed"])

    req, gas = request(2)
    posted, post_gas = post(req)
    anvil_mine(w3, posted.challenge_deadline - w3.eth.block_number + 1)
    fn = coord.contract.functions.finalize(req.as_tuple(), posted.claim().as_tuple())
    out["Optimistic"] = {
        "request": gas,
        "postOptimistic": post_gas,
        "finalize": int(send(w3, USER, fn)["gasUsed"]),
    }
    req, gas = request(2)
    posted, post_gas = post(req)
    claim = posted.claim()
    fn = coord.contract.functions.challenge(req.as_tuple(), claim.as_tuple())
    challenge_gas = int(send(w3, CHALLENGER, fn, value=PARAMS.challenger_bond)["gasUsed"])
    claim = replace(claim, challenger=CHALLENGER.address, challenger_bond=PARAMS.challenger_bond)
    fn = coord.contract.functions.proveOptimistic(req.as_tuple(), claim.as_tuple(), proof.proof)
    out["Optimistic challenged"] = {
        "request": gas,
        "postOptimistic": post_gas,
        "challenge": challenge_gas,
        "proveOptimistic": int(send(w3, NODE, fn)["gasUsed"]),
    }
    zk_total = sum(out["Zk"].values())
    out["Optimistic unchallenged / Zk"] = round(sum(out["Optimistic"].values()) / zk_total, 3)
    out["Optimistic answer only (post + finalize) / Zk fulfill"] = round(
        (out["Optimistic"]["postOptimistic"] + out["Optimistic"]["finalize"])
        / out["Zk"]["fulfill"],
        3,
    )

    def batch(
        mode: int, n: int, output: list[int], proof_bytes: bytes, via: Any = consumer
    ) -> dict[str, Any]:
        # One single fulfil first (the node's balance is already non-zero by now), then n
        # requests answered in one transaction.
        req, _ = request(mode, via)
        single = fulfil(req, output, b"", proof_bytes)
        answers = [(request(mode, via)[0].as_tuple(), output, b"", proof_bytes) for _ in range(n)]
        fn = coord.contract.functions.fulfillBatch(answers)
        mask = fn.call({"from": NODE.address})
        if mask != 0:
            raise RuntimeError(f"fulfillBatch would reject answers: mask {mask:#x}")
        estimate = int(fn.estimate_gas({"from": NODE.address}))
        at_estimate = fn.call({"from": NODE.address, "gas": estimate})
        receipt = send(w3, NODE, fn, gas=w3.eth.get_block("latest")["gasLimit"] // 2)
        rejected = coord.contract.events.AnswerRejected().process_receipt(receipt, errors=DISCARD)
        delivered = coord.contract.events.InferenceFulfilled().process_receipt(
            receipt, errors=DISCARD
        )
        if (
            rejected
            or len(delivered) != n
            or any(ev["args"]["callbackSucceeded"] != (via is consumer) for ev in delivered)
        ):
            raise RuntimeError(f"batch: {len(delivered)} delivered, {len(rejected)} rejected")
        total = int(receipt["gasUsed"])
        return {
            "answers": n,
            "batch gas": total,
            "gas per answer": total // n,
            "single fulfill": single,
            "per answer / single": round(total / n / single, 3),
            "eth_estimateGas": estimate,
            "answers rejected with the estimated gas": bin(at_estimate).count("1"),
        }

    out["fulfillBatch None"] = batch(0, PLAIN_BATCH, proof.output, b"")
    out["fulfillBatch None"]["target"] = BATCH_TARGET
    out["fulfillBatch Zk"] = batch(1, ZK_BATCH, proof.output, proof.proof)
    # The same with a callback that does no work (it reverts at once): what the Coordinator's
    # own share of an answer costs, without the ExampleConsumer's three new storage slots.
    reverting_address, _ = deploy(w3, OWNER, "RevertingConsumer", dep.coordinator)
    reverting = w3.eth.contract(
        address=Web3.to_checksum_address(reverting_address),
        abi=load_artifact("RevertingConsumer").abi,
    )
    out["fulfillBatch None, callback doing no work"] = batch(
        0, PLAIN_BATCH, proof.output, b"", reverting
    )
    for name in ("Coordinator", "ScreenedGovernor"):
        out[f"{name} runtime bytes"] = (len(load_artifact(name).deployed_bytecode) - 2) // 2
    return out


def anvil_mine(w3: Any, blocks: int) -> None:
    w3.provider.make_request("anvil_mine", [hex(max(blocks, 0))])


if __name__ == "__main__":
    main()
