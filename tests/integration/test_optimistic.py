"""Optimistic mode end to end: the node posts its answer with a bond, finalises it after the
window, proves it when challenged, and answers in Zk a request re-opened after another node's
answer was slashed. Real anvil, redis, inference and prover worker processes, EZKL circuits
and verifier.

The node is judged by what only it controls: its rows, its transactions (one post and one
finalise or prove per answer), and that the consumer hears exactly one answer, the circuit's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from oracle.chain.deploy import ETHER, CoordinatorParams, register_node, send, serve_model
from oracle.dev.keys import ANVIL_DEV_KEYS, CHEATER_KEY, NODE_KEY
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.types import Mode, RequestStatus
from tests.support import db
from tests.support.chain import mine
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

NODE = Account.from_key(NODE_KEY)
OUTSIDER = Account.from_key(ANVIL_DEV_KEYS[3])
CHEATER = Account.from_key(CHEATER_KEY)
PARAMS = CoordinatorParams()
INPUT = [4096, -2048, 6144, -8192]  # 0.5, -0.25, 0.75, -1.0 at scale 13


@pytest.fixture
def model_id(zk_model_id: str) -> str:
    return zk_model_id


def status(stack: Stack, request_id: int) -> str | None:
    return stack.row_status(request_id)


def wait_status(stack: Stack, request_id: int, want: RequestStatus, timeout: float = 60) -> Any:
    wait_for(lambda: status(stack, request_id) == want.value, timeout, f"row {want.value}")
    return db.row(stack, request_id)


def circuit_output(stack: Stack, model: str, values: list[int], tmp: Path) -> list[int]:
    store = ArtifactStore(stack.settings.store.path)
    onnx_hash = stack.coordinator.model(model)["onnx_hash"]
    files, manifest = onboarding.check_circuit(store, onnx_hash)
    prover = zk.Prover(files, onboarding.srs_dir(store) / manifest.srs, tmp)
    return prover.circuit_output(values, "test")


def fulfilled(stack: Stack, request_id: int) -> list[Any]:
    return stack.coordinator.contract.events.InferenceFulfilled().get_logs(
        from_block=0, argument_filters={"requestId": request_id}
    )


def node_txs(stack: Stack, request_id: int) -> list[str]:
    """The Coordinator functions the node called for ``request_id``, by nonce (from the
    transactions its row points at), each checked to have succeeded on chain."""
    names = []
    for tx in db.answer_txs(stack, request_id):
        assert stack.w3.eth.get_transaction_receipt(tx.tx_hash)["status"] == 1
        fn, args = stack.coordinator.contract.decode_function_input(
            stack.w3.eth.get_transaction(tx.tx_hash)["input"]
        )
        assert int(args["req"]["requestId"]) == request_id
        names.append(fn.fn_name)
    return names


def test_an_honest_answer_is_posted_then_finalised_once_after_the_window(
    stack: Stack, model_id: str, prover: Any, running_node: Any, tmp_path: Path
) -> None:
    request_id = stack.request(INPUT, mode=Mode.OPTIMISTIC, model_id=model_id)
    row = wait_status(stack, request_id, RequestStatus.POSTED)
    assert [int(v) for v in row.output] == circuit_output(stack, model_id, INPUT, tmp_path)
    assert row.claim_node == NODE.address and int(row.claim_bond) == PARAMS.node_bond
    assert row.proof is None  # nobody challenged: no proof was made
    assert stack.requester.result(request_id)[0] is False  # nothing delivered inside the window
    balance = stack.coordinator.contract.functions.nodeBalance(NODE.address).call()
    mine(stack.w3, row.challenge_deadline - stack.w3.eth.block_number + 1)
    _, output, err = stack.wait_result(request_id, timeout=30)
    assert (output, err) == ([int(v) for v in row.output], b"")
    wait_status(stack, request_id, RequestStatus.CONFIRMED)
    assert len(fulfilled(stack, request_id)) == 1
    assert node_txs(stack, request_id) == ["postOptimistic", "finalize"]
    assert db.stray_fulfilments(stack) == []
    earned = stack.coordinator.contract.functions.nodeBalance(NODE.address).call() - balance
    assert earned == PARAMS.node_bond + stack.coordinator.quote_fee(
        model_id, Mode.OPTIMISTIC, 300_000
    )


def test_a_challenged_answer_is_proven_by_the_node_and_the_challenger_loses_its_bond(
    stack: Stack, model_id: str, prover: Any, running_node: Any
) -> None:
    request_id = stack.request(INPUT, mode=Mode.OPTIMISTIC, model_id=model_id)
    row = wait_status(stack, request_id, RequestStatus.POSTED)
    req = stack.coordinator.request_of(request_id, stack.w3.eth.block_number)
    assert req is not None
    claim = stack.coordinator.posted_logs(0, stack.w3.eth.block_number)[-1].claim()
    send(
        stack.w3,
        OUTSIDER,
        stack.coordinator.contract.functions.challenge(req.as_tuple(), claim.as_tuple()),
        value=PARAMS.challenger_bond,
    )
    # The node sees the challenge, proves its posted output and delivers it: no waiting for
    # the proof window, and nothing delivered before the proof.
    wait_status(stack, request_id, RequestStatus.CONFIRMED, timeout=120)
    row = db.row(stack, request_id)
    assert row.challenger == OUTSIDER.address and row.proof
    defeated = stack.coordinator.contract.events.ChallengeDefeated().get_logs(from_block=0)
    assert [e["args"]["requestId"] for e in defeated] == [request_id]
    assert stack.requester.result(request_id) == (True, [int(v) for v in row.output], b"")
    assert len(fulfilled(stack, request_id)) == 1
    assert node_txs(stack, request_id) == ["postOptimistic", "proveOptimistic"]
    assert stack.w3.eth.block_number <= row.proof_deadline


def test_a_request_reopened_after_a_slashed_answer_is_answered_in_zk(
    stack: Stack, model_id: str, prover: Any, running_node: Any, tmp_path: Path
) -> None:
    register_node(stack.w3, CHEATER, stack.coordinator.address, ETHER)
    serve_model(stack.w3, CHEATER, stack.coordinator.address, model_id)
    # Requests rotate over the serving nodes: take the first one assigned to the cheater.
    for _ in range(3):
        request_id = stack.request(INPUT, mode=Mode.OPTIMISTIC, model_id=model_id)
        if stack.coordinator.contract.functions.assignedNode(request_id).call() == CHEATER.address:
            break
    else:
        pytest.fail("no request was assigned to the second node")
    req = stack.coordinator.request_of(request_id, stack.w3.eth.block_number)
    assert req is not None
    truth = circuit_output(stack, model_id, INPUT, tmp_path)
    wrong = [truth[0] + 5000]
    receipt = send(
        stack.w3,
        CHEATER,
        stack.coordinator.contract.functions.postOptimistic(req.as_tuple(), wrong),
        value=PARAMS.node_bond,
    )
    (posted,) = stack.coordinator.posted_in_receipt(receipt)
    claim = posted.claim()
    send(
        stack.w3,
        OUTSIDER,
        stack.coordinator.contract.functions.challenge(req.as_tuple(), claim.as_tuple()),
        value=PARAMS.challenger_bond,
    )
    claim = replace(claim, challenger=OUTSIDER.address, challenger_bond=PARAMS.challenger_bond)
    mine(stack.w3, posted.proof_deadline - stack.w3.eth.block_number + 1)
    receipt = send(
        stack.w3,
        OUTSIDER,
        stack.coordinator.contract.functions.finalize(req.as_tuple(), claim.as_tuple()),
    )
    assert stack.coordinator.contract.events.OptimisticAnswerSlashed().process_receipt(
        receipt, errors=DISCARD
    )
    # Re-opened in Zk mode and assigned to our node, which proves and answers.
    _, output, err = stack.wait_result(request_id, timeout=120)
    assert (output, err) == (truth, b"")
    row = wait_status(stack, request_id, RequestStatus.CONFIRMED)
    assert row.mode == Mode.ZK and row.proof and row.block_number == int(receipt["blockNumber"])
    events = fulfilled(stack, request_id)
    assert [list(e["args"]["output"]) for e in events] == [truth]  # the wrong value never arrived
    assert node_txs(stack, request_id) == ["fulfill"]
