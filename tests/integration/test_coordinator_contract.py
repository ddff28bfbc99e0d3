"""Coordinator behaviour on a real anvil chain, without the node: access, replay, refunds.

The chain is deployed once per session (``coordinator_chain``); each test starts from a
snapshot of it and is reverted after (``chain``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from web3.logs import DISCARD

from oracle.chain.deploy import ETHER, send
from oracle.fixedpoint import BN254_R
from tests.support.contract import (
    MODEL,
    MODEL_ONNX,
    NODE,
    OUTSIDER,
    OWNER,
    TIMEOUT_BLOCKS,
    USER,
    ZK_MODEL,
    Chain,
    reverts_with,
)

pytestmark = pytest.mark.integration


def test_fulfil_delivers_output_pays_node_and_deletes_commitment(chain: Chain) -> None:
    req = chain.request([5, -7])
    assert chain.coord.commitment(req.request_id) != b"\0" * 32
    receipt = chain.fulfill(req, [42])
    assert chain.consumer.functions.getResult(req.request_id).call() == [True, [42], b""]
    assert chain.coord.commitment(req.request_id) == b"\0" * 32
    assert chain.coord.contract.functions.nodeBalance(NODE.address).call() == req.fee
    ev = chain.coord.contract.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)[
        0
    ]["args"]
    assert ev["callbackSucceeded"] is True and ev["node"] == NODE.address


@pytest.mark.faults
def test_replayed_fulfilment_is_rejected(chain: Chain) -> None:
    req = chain.request([1, 2])
    chain.fulfill(req, [3])
    reverts_with("RequestNotPending", lambda: chain.fulfill(req, [4]))


@pytest.mark.faults
@pytest.mark.parametrize(
    "field,value",
    [
        ("fee", 1),
        ("input", (9, 9)),
        ("requested_at_block", 1),
        ("callback_gas_limit", 1_000_000),
        ("mode", 1),
    ],
)
def test_tampered_request_fields_do_not_match_the_commitment(
    chain: Chain, field: str, value: Any
) -> None:
    req = chain.request([1, 2])
    reverts_with("CommitmentMismatch", lambda: chain.fulfill(replace(req, **{field: value}), [3]))


@pytest.mark.faults
def test_only_active_nodes_can_fulfil(chain: Chain) -> None:
    req = chain.request([1, 2])
    reverts_with("NotActiveNode", lambda: chain.fulfill(req, [3], sender=OUTSIDER))
    send(chain.w3, OWNER, chain.coord.contract.functions.setNodePaused(NODE.address, True))
    reverts_with("NotActiveNode", lambda: chain.fulfill(req, [3]))
    reverts_with(
        "OwnableUnauthorizedAccount",
        lambda: send(
            chain.w3, OUTSIDER, chain.coord.contract.functions.setNodePaused(NODE.address, False)
        ),
    )
    send(chain.w3, OWNER, chain.coord.contract.functions.setNodePaused(NODE.address, False))
    chain.fulfill(req, [3])


def test_only_the_coordinator_can_deliver_to_a_consumer(chain: Chain) -> None:
    reverts_with(
        "OnlyCoordinator",
        lambda: send(chain.w3, OUTSIDER, chain.consumer.functions.rawFulfillInference(1, [1], b"")),
    )


@pytest.mark.faults
@pytest.mark.parametrize("name", ["RevertingConsumer", "GasHungryConsumer"])
def test_failing_callback_is_reported_not_reverted(chain: Chain, name: str) -> None:
    consumer = chain.deploy_consumer(name)
    req = chain.request([1, 2], consumer=consumer, gas=100_000)
    receipt = chain.fulfill(req, [3])
    ev = chain.coord.contract.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)[
        0
    ]["args"]
    assert ev["callbackSucceeded"] is False
    assert chain.coord.commitment(req.request_id) == b"\0" * 32
    if name == "GasHungryConsumer":  # it got exactly its limit, not the rest of the tx
        assert receipt["gasUsed"] < 100_000 + 120_000


@pytest.mark.faults
def test_too_little_gas_for_the_callback_reverts_instead_of_starving_it(chain: Chain) -> None:
    consumer = chain.deploy_consumer("GasHungryConsumer")
    req = chain.request([1, 2], consumer=consumer, gas=500_000)
    tx = chain.coord.contract.functions.fulfill(req.as_tuple(), [3], b"", b"").build_transaction(
        {
            "from": NODE.address,
            "gas": 300_000,
            "nonce": chain.w3.eth.get_transaction_count(NODE.address),
            "chainId": chain.w3.eth.chain_id,
        }
    )
    tx_hash = chain.w3.eth.send_raw_transaction(NODE.sign_transaction(tx).raw_transaction)
    receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert chain.coord.commitment(req.request_id) != b"\0" * 32  # still pending, can be re-sent
    with pytest.raises(Exception) as info:
        chain.coord.contract.functions.fulfill(req.as_tuple(), [3], b"", b"").call(
            {"from": NODE.address, "gas": 300_000}
        )
    from oracle.chain.client import revert_from_exception

    revert = revert_from_exception(info.value)
    assert revert is not None and revert.name == "InsufficientGasForCallback"


@pytest.mark.faults
def test_reentrant_consumer_cannot_fulfil_twice(chain: Chain) -> None:
    consumer = chain.deploy_consumer("ReentrantConsumer")
    req = chain.request([1, 2], consumer=consumer, gas=500_000)
    send(chain.w3, USER, consumer.functions.arm(req.as_tuple()))
    # The consumer calls fulfill from inside its callback, as the Coordinator.
    chain.fulfill(req, [3])
    called, reentry_reverted = consumer.functions.outcome().call()
    assert called and reentry_reverted
    assert chain.coord.contract.functions.nodeBalance(NODE.address).call() == req.fee


@pytest.mark.faults
def test_cancel_after_deadline_refunds_exactly_and_blocks_fulfilment(chain: Chain) -> None:
    req = chain.request([1, 2])
    reverts_with(
        "RequestNotExpired",
        lambda: send(chain.w3, USER, chain.consumer.functions.cancel(req.as_tuple())),
    )
    chain.w3.provider.make_request("anvil_mine", [hex(TIMEOUT_BLOCKS + 1)])  # type: ignore[arg-type]
    reverts_with(
        "NotRequester",
        lambda: send(chain.w3, OUTSIDER, chain.consumer.functions.cancel(req.as_tuple())),
    )
    coordinator_before = chain.w3.eth.get_balance(chain.coord.address)
    user_before = chain.w3.eth.get_balance(USER.address)
    receipt = send(chain.w3, USER, chain.consumer.functions.cancel(req.as_tuple()))
    gas_cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(USER.address) == user_before + req.fee - gas_cost
    assert chain.w3.eth.get_balance(chain.coord.address) == coordinator_before - req.fee
    reverts_with("RequestNotPending", lambda: chain.fulfill(req, [3]))


def test_request_validation(chain: Chain) -> None:
    fn = chain.consumer.functions.requestPrediction
    reverts_with(
        "InsufficientFee",
        lambda: send(chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [1, 2], 0, 200_000), value=1),
    )
    reverts_with(
        "UnknownModel",
        lambda: send(chain.w3, USER, fn(b"\x33" * 32, [1, 2], 0, 200_000), value=ETHER),
    )
    reverts_with(
        "ModelNotVerifiable",
        lambda: send(chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [1, 2], 1, 200_000), value=ETHER),
    )
    reverts_with(
        "InvalidMode",
        lambda: send(chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [1, 2], 3, 200_000), value=ETHER),
    )
    reverts_with(
        "InputTooLong",
        lambda: send(
            chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [1] * 17, 0, 200_000), value=ETHER
        ),
    )
    reverts_with(
        "EmptyInput",
        lambda: send(chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [], 0, 200_000), value=ETHER),
    )
    reverts_with(
        "CallbackGasLimitTooHigh",
        lambda: send(chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), [1], 0, 3_000_000), value=ETHER),
    )
    reverts_with(
        "ScaleTooLarge",
        lambda: send(
            chain.w3,
            OUTSIDER,
            chain.coord.contract.functions.registerModel(
                bytes.fromhex(MODEL_ONNX[2:]), 2, 1, 65, 16, "0x" + "00" * 20
            ),
        ),
    )


def test_zk_mode_checks_the_proof_against_field_mapped_instances(chain: Chain) -> None:
    req = chain.request([-3, 7], mode=1, model=ZK_MODEL)
    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(False))
    reverts_with("InvalidProof", lambda: chain.fulfill(req, [-1], proof=b"\x01"))
    assert chain.coord.commitment(req.request_id) != b"\0" * 32  # left open
    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(True))
    # The verifier accepts only the request's input then the output, each as a field element.
    send(chain.w3, OWNER, chain.verifier.functions.setExpectedInstances([BN254_R - 3, 7, 1]))
    reverts_with("InvalidProof", lambda: chain.fulfill(req, [-1], proof=b"\x01"))
    send(
        chain.w3,
        OWNER,
        chain.verifier.functions.setExpectedInstances([BN254_R - 3, 7, BN254_R - 1]),
    )
    chain.fulfill(req, [-1], proof=b"\x01")
    assert chain.coord.commitment(req.request_id) == b"\0" * 32


def test_node_stake_and_fee_withdrawal(chain: Chain) -> None:
    reverts_with(
        "NodeAlreadyRegistered",
        lambda: send(chain.w3, NODE, chain.coord.contract.functions.registerNode(), value=ETHER),
    )
    reverts_with(
        "InsufficientStake",
        lambda: send(chain.w3, OUTSIDER, chain.coord.contract.functions.registerNode(), value=1),
    )
    req = chain.request([1, 2])
    chain.fulfill(req, [3])
    before = chain.w3.eth.get_balance(OUTSIDER.address)
    send(chain.w3, NODE, chain.coord.contract.functions.withdrawFees(OUTSIDER.address))
    assert chain.w3.eth.get_balance(OUTSIDER.address) == before + req.fee
    reverts_with(
        "NothingToWithdraw",
        lambda: send(chain.w3, NODE, chain.coord.contract.functions.withdrawFees(OUTSIDER.address)),
    )


def test_zk_error_answer_carries_no_output_and_refunds_the_premium(chain: Chain) -> None:
    req = chain.request([1, 2], mode=1, model=ZK_MODEL)
    reverts_with("UnprovenOutput", lambda: chain.fulfill(req, [5], err=b"model failed"))
    node_before = chain.coord.contract.functions.nodeBalance(NODE.address).call()
    premium = chain.coord.contract.functions.feeConfig().call()[1]
    receipt = chain.fulfill(req, [], err=b"model failed")
    refunds = chain.coord.contract.events.FeeRefunded().process_receipt(receipt, errors=DISCARD)
    assert [(e["args"]["requestId"], e["args"]["amount"]) for e in refunds] == [
        (req.request_id, premium)
    ]
    balance = chain.coord.contract.functions.nodeBalance
    assert balance(chain.consumer.address).call() == premium
    # No premium for an unproven failure; the base fee and the callback gas are the node's.
    assert balance(NODE.address).call() == node_before + req.fee - premium
    assert chain.consumer.functions.getResult(req.request_id).call()[2] == b"model failed"
