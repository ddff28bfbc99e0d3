"""Gas an answer needs, measured on the real Coordinator, against what the node allows it.

For each answer shape (input and output lengths from 1 to 1,000 elements; a plain answer and
an error answer) it measures on anvil the least gas limit at which

- ``fulfill`` lands (``eth_estimateGas``: the transaction reverts below it), and
- a ``fulfillBatch`` of one such item accepts it (binary search over ``eth_call``: a batch
  short of gas does not revert, it rejects the item),

Gas limits are whole transactions (intrinsic, call data or EIP-7623 floor, execution), with
a consumer whose callback burns every unit of its callback gas (the worst case: what is
left after the callback must still pay for the event). It prints each next to the gas the
node allots (``oracle.relayer.gas``) and their ratio; a ratio under 1 is a bug (the node's
allowance would run out), one far above 1 wastes block space.

    python bench/answer_gas.py          # make bench-answer-gas
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracle.chain.artifacts import load_artifact
from oracle.chain.batch import BatchAnswer, batch_calldata, rejected_items
from oracle.chain.client import CoordinatorClient
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import ETHER, CoordinatorParams, deploy, deploy_stack, register_node, send
from oracle.dev.keys import DEPLOYER_KEY, NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import Anvil
from oracle.relayer.gas import AnswerShape, transaction_gas

SIZES = (1, 10, 100, 300, 1000)
BATCH_SIZES = (10, 100, 300, 1000)  # a batch of BATCH_ITEMS answers, this many in and out
BATCH_ITEMS = 8
CALLBACK_GAS = 200_000


def least_batch_gas(w3: Web3, node: str, coordinator: str, data: str, hi: int, n: int) -> int:
    """The least gas at which a ``fulfillBatch`` of ``n`` items accepts every item."""
    lo = 21_000
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            result = w3.eth.call({"from": node, "to": coordinator, "data": data, "gas": mid})  # type: ignore[typeddict-item]
            ok = not rejected_items(bytes(result), n)
        except Exception:
            ok = False
        lo, hi = (lo, mid) if ok else (mid, hi)
    return hi


def main() -> None:
    compile_contracts()
    owner, node, requester = (Account.from_key(k) for k in (DEPLOYER_KEY, NODE_KEY, REQUESTER_KEY))
    with tempfile.TemporaryDirectory() as tmp:
        anvil = Anvil(Path(tmp) / "anvil.log", gas_limit=60_000_000)
        anvil.start()
        try:
            rows, batches = measure(anvil, owner, node, requester)
        finally:
            anvil.stop()
    print(
        f"{'in':>5} {'out':>5} {'err':>4}  {'fulfill':>9} {'batch item':>10}  "
        f"{'allowed':>9}  {'ratio f':>7} {'ratio b':>7}"
    )
    worst = 10.0
    for r in rows:
        rf, rb = r["allowed"] / r["fulfill"], r["allowed_batch"] / r["batch"]
        worst = min(worst, rf, rb)
        print(
            f"{r['in']:>5} {r['out']:>5} {r['err']:>4}  {r['fulfill']:>9} {r['batch']:>10}  "
            f"{r['allowed']:>9}  {rf:>7.3f} {rb:>7.3f}"
        )
    for r in batches:
        ratio = r["allowed"] / r["need"]
        worst = min(worst, ratio)
        print(
            f"batch of {r['k']} items of {r['size']} in / {r['size']} out: need {r['need']}, "
            f"allowed {r['allowed']}, ratio {ratio:.3f}"
        )
    print(f"least allowance / need: {worst:.3f} (must be >= 1)")
    if worst < 1.0:
        sys.exit(1)


def measure(
    anvil: Anvil, owner: Any, node: Any, requester: Any
) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    w3 = anvil.w3()
    params = CoordinatorParams(max_input_length=1024, max_callback_gas_limit=2_000_000)
    deployment = deploy_stack(w3, owner, anvil.url, params)
    register_node(w3, node, deployment.coordinator, 10 * ETHER)
    client = CoordinatorClient(w3, deployment.coordinator)
    consumer_address, _ = deploy(w3, requester, "GasHungryConsumer", deployment.coordinator)
    consumer = w3.eth.contract(
        address=Web3.to_checksum_address(consumer_address),
        abi=load_artifact("GasHungryConsumer").abi,
    )
    rows: list[dict[str, int]] = []
    batches: list[dict[str, int]] = []
    for size in BATCH_SIZES:
        model_id = new_model(w3, client, owner, node, size, size)
        answers, shapes = [], []
        for _ in range(BATCH_ITEMS):
            req = new_request(w3, client, consumer, requester, model_id, size)
            output = tuple(-(2**200) - i for i in range(size))
            answers.append(BatchAnswer(req, output, b"", b""))
            shapes.append(shape_of(size, size, b""))
        data = batch_calldata(client, answers)
        need = least_batch_gas(w3, node.address, client.address, data, 55_000_000, len(answers))
        batches.append(
            {"k": BATCH_ITEMS, "size": size, "need": need, "allowed": transaction_gas(shapes, data)}
        )
    for n_in in SIZES:
        for n_out in SIZES:
            model_id = new_model(w3, client, owner, node, n_in, n_out)
            for err in (False, True):
                req = new_request(w3, client, consumer, requester, model_id, n_in)
                output = [] if err else [-(2**200) - i for i in range(n_out)]
                error = b"x" * 256 if err else b""
                data = client.fulfill_calldata(req, output, error, b"")
                fulfil = w3.eth.estimate_gas(
                    {"from": node.address, "to": client.address, "data": data}  # type: ignore[typeddict-item]
                )
                batch = batch_calldata(client, [BatchAnswer(req, tuple(output), error, b"")])
                batch_need = least_batch_gas(w3, node.address, client.address, batch, 30_000_000, 1)
                shape = shape_of(n_in, len(output), error)
                rows.append(
                    {
                        "in": n_in,
                        "out": n_out,
                        "err": int(err),
                        "fulfill": int(fulfil),
                        "batch": batch_need,
                        "allowed": transaction_gas([shape], data),
                        "allowed_batch": transaction_gas([shape], batch),
                    }
                )
    return rows, batches


def shape_of(n_in: int, n_out: int, err: bytes) -> AnswerShape:
    return AnswerShape(
        input_length=n_in,
        output_length=n_out,
        err_length=len(err),
        proof_length=0,
        callback_gas=CALLBACK_GAS,
        zk=False,
    )


def new_model(
    w3: Web3, client: CoordinatorClient, owner: Any, node: Any, n_in: int, n_out: int
) -> str:
    """A model of that shape (no ONNX file behind it: the Coordinator only keeps its hash),
    served by ``node``."""
    fn = client.contract.functions.registerModel(
        os.urandom(32), n_in, n_out, 16, 16, "0x" + "00" * 20
    )
    model_id = "0x" + bytes(fn.call({"from": owner.address})).hex()
    send(w3, owner, fn)
    send(w3, node, client.contract.functions.serveModel(bytes.fromhex(model_id[2:])))
    return model_id


def new_request(
    w3: Web3, client: CoordinatorClient, consumer: Any, requester: Any, model_id: str, n_in: int
) -> Any:
    """A request through ``consumer`` with ``n_in`` inputs whose bytes are all non-zero."""
    fee = client.quote_fee(model_id, 0, CALLBACK_GAS)
    inputs = [-(2**200) - i for i in range(n_in)]
    receipt = send(
        w3,
        requester,
        consumer.functions.requestPrediction(bytes.fromhex(model_id[2:]), inputs, 0, CALLBACK_GAS),
        value=fee,
    )
    (req,) = client.requested_in_receipt(receipt)
    return req


if __name__ == "__main__":
    main()
