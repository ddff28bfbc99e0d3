"""Batching through a real worker process and the node: requests that wait together in the
queue are run by one job as one batch, each answered once with its own output; answers ready
together go on chain in ``fulfillBatch`` transactions, each request answered once."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import select

from oracle.db import InferenceRequest
from oracle.dev.keys import REQUESTER_KEY
from oracle.fixedpoint import from_fixed, to_fixed
from tests.support import db
from tests.support.chain import deploy_consumer, fulfilled_events, logs, mine, rpc, signed_request
from tests.support.checks import answered_exactly_once
from tests.support.models import EXAMPLE_MODEL
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

N = 8


def test_requests_waiting_together_run_as_one_batch_each_answered_once(
    stack: Stack, running_node: object
) -> None:
    stack.worker.kill()  # requests pile up in the queue while no worker runs
    rng = np.random.default_rng(4)
    inputs = [[float(v) for v in rng.uniform(-1, 1, 4)] for _ in range(N)]
    ids = [stack.request([to_fixed(v, 16) for v in x]) for x in inputs]
    wait_for(lambda: all(stack.row_status(i) == "queued" for i in ids), 30, "all requests queued")
    stack.start_worker("batcher")

    session = ort.InferenceSession(str(EXAMPLE_MODEL), providers=["CPUExecutionProvider"])
    for request_id, x in zip(ids, inputs, strict=True):
        fulfilled, output, err = stack.wait_result(request_id, timeout=60)
        assert fulfilled and err == b""
        want = float(session.run(None, {"input": np.array([x], dtype=np.float32)})[0][0, 0])
        assert from_fixed(output[0], 16) == pytest.approx(want, abs=2**-15)
    with stack.db.session() as s:
        rows = list(
            s.execute(
                select(InferenceRequest.attempts, InferenceRequest.inferred_at).where(
                    InferenceRequest.request_id.in_(ids)
                )
            )
        )
    assert [attempts for attempts, _ in rows] == [1] * N  # each claimed exactly once
    # A batch writes one finish time for all its rows: fewer batches than requests.
    assert len({inferred_at for _, inferred_at in rows}) < N
    for request_id in ids:
        wait_for(lambda rid=request_id: stack.row_status(rid) == "confirmed", what="confirmed")


def test_a_burst_in_one_block_is_answered_in_batches_each_request_once(
    stack: Stack, running_node: object
) -> None:
    """Requests mined together are answered by a few ``fulfillBatch`` transactions; an
    error answer and a consumer whose callback reverts ride in the same batch without
    disturbing the others, and every request is answered once."""
    hostile = deploy_consumer(stack.w3, "RevertingConsumer", stack.deployment.coordinator)
    stack.worker.kill()  # the answers become ready together, as after a burst
    w3 = stack.w3
    first = int(stack.coordinator.contract.functions.nextRequestId().call())
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    raw = [signed_request(stack, nonce + i, [(i + 1) << 12, 0, 1 << 13, 0]) for i in range(20)]
    raw.append(signed_request(stack, nonce + 20, [2**100, 0, 0, 0]))  # answered with an error
    raw.append(signed_request(stack, nonce + 21, consumer=hostile))
    rpc(w3, "evm_setAutomine", [False])
    try:
        for tx in raw:
            w3.eth.send_raw_transaction(tx)
        mine(w3, 1)
    finally:
        rpc(w3, "evm_setAutomine", [True])
    ids = list(range(first, first + len(raw)))
    requested = logs(stack, "InferenceRequested")
    assert {requested[i][0] for i in ids} == {int(w3.eth.block_number)}  # one block
    wait_for(lambda: all(stack.row_status(i) == "queued" for i in ids), 30, "all queued")
    stack.start_worker("batcher")
    answered_exactly_once(stack, ids[:21], timeout=90)  # the example consumer's requests
    wait_for(lambda: stack.row_status(ids[21]) == "confirmed", 30, "hostile request confirmed")
    assert len(db.fulfilment_txs(stack, ids[21])) == 1 and not db.stray_fulfilments(stack)

    txs = {i: db.fulfilment_txs(stack, i)[0] for i in ids}
    assert len({tx.id for tx in txs.values()}) < len(ids) / 2, "answers were not batched"
    batch_hash = txs[ids[0]].tx_hash
    receipt = w3.eth.get_transaction_receipt(HexBytes(batch_hash))
    fn = stack.coordinator.contract.get_function_by_selector(
        bytes(w3.eth.get_transaction(HexBytes(batch_hash))["input"])[:4]
    )
    assert fn.fn_name == "fulfillBatch"
    answered = stack.coordinator.fulfilled_in_receipt(receipt)
    assert len(answered) == sum(1 for tx in txs.values() if tx.tx_hash == batch_hash) > 1
    ok, _, err = stack.requester.result(ids[20])
    assert ok and err.startswith(b"value out of range")
    (ev,) = fulfilled_events(stack, ids[21])
    assert ev["args"]["callbackSucceeded"] is False
    for request_id in ids[:20]:
        ok, output, err = stack.requester.result(request_id)
        assert ok and err == b"" and len(output) == 1
