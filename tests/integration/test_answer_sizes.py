"""Answers of every size in one burst: no answer can stall the relayer or delay the others.

A burst mined in one block mixes ordinary requests (the 4-in, 1-out example model) with
requests whose inputs and outputs run from 1 to 1,000 elements (plain models made here), and
Zk and optimistic requests (the example circuit). Every request is answered exactly once (one
``InferenceFulfilled``, one transaction of the node's per row), and the ordinary answers land
as many blocks after the burst as in a burst of ordinary requests alone on the same chain
(p99 of blocks from request to answer, both measured in this run: the block after the
burst is mined once the node has broadcast every plain answer, so what lands in it is what
the node sent first and what a block holds, not how busy the machine is; then 1 s blocks).
Real anvil, redis, inference and prover worker processes, EZKL circuits and verifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from eth_account import Account
from hexbytes import HexBytes
from onnx import TensorProto, helper, numpy_helper

from oracle.dev.keys import ANVIL_DEV_KEYS, REQUESTER_KEY
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.types import Mode
from tests.support import db
from tests.support.chain import fulfilled_events, logs, mine, rpc, signed_request
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

OWNER = Account.from_key(ANVIL_DEV_KEYS[0])
SHAPES = [(1000, 1), (1, 1000), (300, 300), (1000, 1000), (10, 100)]  # (inputs, outputs)
ORDINARY = 16
BLOCK_TIME_S = 1
ZK_INPUT = [4096, -2048, 6144, -8192]


def shaped_model(path: Path, n_in: int, n_out: int) -> Path:
    """A plain model ``[1, n_in] -> [1, n_out]``: one MatMul with small weights."""
    weights = np.full((n_in, n_out), 1.0 / n_in, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        f"shape_{n_in}_{n_out}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n_out])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def sized_models(stack: Stack, tmp_path: Path) -> dict[tuple[int, int], str]:
    """Plain models of each shape in SHAPES, registered and served by the stack's node."""
    store = ArtifactStore(stack.settings.store.path)
    found = {}
    for n_in, n_out in SHAPES:
        path = shaped_model(tmp_path / f"shape_{n_in}_{n_out}.onnx", n_in, n_out)
        model_id, _ = register_model(stack.db, store, stack.coordinator, OWNER, path, 16, 16)
        stack.local.serve(model_id)
        found[(n_in, n_out)] = model_id
    return found


def burst(
    stack: Stack, requests: list[tuple[str | None, list[int], Mode]]
) -> tuple[list[int], int]:
    """``requests`` (model id or None for the example model, input, mode) mined together in
    one block, and no block after it until :func:`mine_once_sent`; their ids and the block."""
    w3 = stack.w3
    first = int(stack.coordinator.contract.functions.nextRequestId().call())
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    raw = [
        signed_request(stack, nonce + i, values, model_id=model, mode=mode, tx_gas=3_000_000)
        for i, (model, values, mode) in enumerate(requests)
    ]
    rpc(w3, "evm_setIntervalMining", [0])
    rpc(w3, "evm_setAutomine", [False])
    for tx in raw:
        w3.eth.send_raw_transaction(tx)
    mine(w3, 1)
    block = int(w3.eth.block_number)
    ids = list(range(first, first + len(requests)))
    requested = logs(stack, "InferenceRequested")
    assert {requested[i][0] for i in ids} == {block}, "the burst was not mined in one block"
    return ids, block


def mine_once_sent(stack: Stack, ids: list[int]) -> None:
    """Wait until the node has broadcast an answer for every request in ``ids`` (each row's
    transaction is in anvil's pool), mine one block, then 1 s blocks. What lands in that
    block is what the node sent first and how much a block holds, not how fast this machine
    happens to be while other tests run beside this one."""

    def sent() -> bool:
        for request_id in ids:
            txs = db.fulfilment_txs(stack, request_id)
            if not txs or stack.w3.eth.get_transaction(HexBytes(txs[0].tx_hash)) is None:
                return False
        return True

    wait_for(_quietly(sent), 120, f"answers to {len(ids)} requests broadcast", interval=0.2)
    mine(stack.w3, 1)
    rpc(stack.w3, "evm_setIntervalMining", [BLOCK_TIME_S])


def _quietly(check: Any) -> Any:
    """``check``, False where it raises (a transaction not yet known to anvil)."""

    def run() -> bool:
        try:
            return bool(check())
        except Exception:
            return False

    return run


def answered_once(stack: Stack, ids: list[int], timeout: float) -> dict[int, int]:
    """Wait until every request's row is final and its answer is on chain; check each was
    answered by one ``InferenceFulfilled`` and one transaction of the node's (not the
    consumer's storage: the example consumer cannot store 1,000 outputs in its callback
    gas, and the callback failing is the consumer's business). Request id -> answer block."""
    seen: dict[int, list[int]] = {}

    def settled() -> bool:
        seen.clear()
        seen.update(logs(stack, "InferenceFulfilled"))
        return all(i in seen and db.is_final(db.row_status(stack, i)) for i in ids)

    wait_for(settled, timeout, f"{len(ids)} requests answered", interval=0.5)
    assert all(len(seen[i]) == 1 for i in ids), {i: seen[i] for i in ids if len(seen[i]) != 1}
    txs = {i: len(db.fulfilment_txs(stack, i)) for i in ids}
    assert all(n == 1 for n in txs.values()), f"fulfilment txs: {txs}"
    assert not db.stray_fulfilments(stack)
    return {i: seen[i][0] for i in ids}


def ordinary_request(i: int) -> tuple[str | None, list[int], Mode]:
    return (None, [(i + 1) << 12, 0, 1 << 13, 0], Mode.NONE)


def p99(values: list[int]) -> float:
    return float(np.percentile(values, 99))


@pytest.mark.request_timeout_blocks(200)
def test_large_answers_are_answered_once_and_do_not_delay_ordinary_ones(
    stack: Stack,
    sized_models: dict[tuple[int, int], str],
    zk_model_id: str,
    prover: object,
    running_node: object,  # last: the models are served (with the node's key) before it runs
) -> None:
    # A burst of ordinary requests alone: the reference.
    ordinary_requests = [ordinary_request(i) for i in range(ORDINARY)]
    alone, block = burst(stack, ordinary_requests)
    mine_once_sent(stack, alone)
    reference = [b - block for b in answered_once(stack, alone, 120).values()]

    # The same again, mixed with every size, Zk and optimistic requests, in one block.
    mixed: list[tuple[str | None, list[int], Mode]] = []
    kinds: list[str] = []
    for i in range(ORDINARY):
        mixed.append(ordinary_requests[i])
        kinds.append("ordinary")
        if i % 3 == 0:
            n_in, n_out = SHAPES[(i // 3) % len(SHAPES)]
            values = [((j % 7) - 3) << 13 for j in range(n_in)]
            mixed.append((sized_models[(n_in, n_out)], values, Mode.NONE))
            kinds.append(f"{n_in}x{n_out}")
    for mode in (Mode.ZK, Mode.ZK, Mode.OPTIMISTIC, Mode.OPTIMISTIC):
        mixed.append((zk_model_id, ZK_INPUT, mode))
        kinds.append(mode.name.lower())
    ids, block = burst(stack, mixed)
    mine_once_sent(
        stack, [i for i, k in zip(ids, kinds, strict=True) if k not in ("zk", "optimistic")]
    )
    answered = answered_once(stack, ids, 180)

    ordinary = [i for i, kind in zip(ids, kinds, strict=True) if kind == "ordinary"]
    with_large = [answered[i] - block for i in ordinary]
    print(
        f"blocks to answer, ordinary requests: alone p99 {p99(reference)}, "
        f"with large answers p99 {p99(with_large)}"
    )
    assert p99(with_large) <= p99(reference), (reference, with_large)
    for request_id, kind in zip(ids, kinds, strict=True):
        (event,) = fulfilled_events(stack, request_id)
        assert event["args"]["err"] == b"", (kind, event["args"]["err"])
        want = int(kind.split("x")[1]) if "x" in kind else 1
        assert len(event["args"]["output"]) == want, kind


@pytest.mark.parametrize("gas", [300_000, 2_000_000])
def test_a_lone_request_of_any_size_is_answered_once(
    stack: Stack,
    sized_models: dict[tuple[int, int], str],
    running_node: object,  # last: the models are served (with the node's key) before it runs
    gas: int,
) -> None:
    """One request at a time, so each answer goes alone through ``fulfill`` (the path that
    ran out of gas every round for a 300-element output), with little and much callback
    gas: each is answered once, with its whole output."""
    for (n_in, n_out), model_id in sized_models.items():
        values = [((j % 7) - 3) << 13 for j in range(n_in)]
        request_id = stack.request(values, gas=gas, model_id=model_id)
        answered_once(stack, [request_id], 60)
        (event,) = fulfilled_events(stack, request_id)
        assert event["args"]["err"] == b"" and len(event["args"]["output"]) == n_out
