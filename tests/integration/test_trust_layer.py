"""Attacks on the Coordinator's trust rules, performed against the real contracts on anvil.

Each test carries out an attack that the Coordinator used to accept and shows that it is
now refused (with the custom error that says why), and that the honest path still works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, RequestStruct, revert_from_exception
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    deploy,
    deploy_stack,
    register_node,
    send,
    serve_model,
)
from oracle.dev.processes import Anvil
from oracle.errors import TransactionError
from oracle.models import circuits, onboarding, zk
from oracle.models.registration import content_model_id
from oracle.models.store import ArtifactStore
from tests.support.chain import mine, rpc
from tests.support.contract import (
    MODEL,
    MODEL_ONNX,
    NODE,
    OUTSIDER,
    OWNER,
    TIMEOUT_BLOCKS,
    USER,
    ZK_MODEL,
    ZK_MODEL_ONNX,
    Chain,
    artifact_code_hash,
    deployed_chain,
    register_raw,
    reverts_with,
)
from tests.support.models import EXAMPLE_CALIBRATION, seed_store

pytestmark = pytest.mark.integration

R = zk.FIELD_MODULUS
HALF = (R - 1) // 2  # the canonical signed range is |x| <= HALF
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1
ZK_SCALE = 13
ZERO = b"\0" * 32


def fulfilled(ch: Chain, receipt: Any) -> dict[str, Any]:
    events = ch.coord.contract.events.InferenceFulfilled().process_receipt(receipt, errors=DISCARD)
    return dict(events[0]["args"])


def revert_name(fn: Any, params: dict[str, Any]) -> str | None:
    """The custom error ``fn`` reverts with when simulated (None when it would succeed)."""
    try:
        fn.call(params)
    except Exception as exc:  # web3 raises several types for a revert
        revert = revert_from_exception(exc)
        assert revert is not None, exc
        return revert.name
    return None


# -- 1. field aliasing -------------------------------------------------------------------
@dataclass
class ZkChain:
    w3: Web3
    coord: CoordinatorClient
    consumer: Any
    model_id: str
    prover: zk.Prover

    def request(self, values: list[int]) -> RequestStruct:
        fee = self.coord.quote_fee(self.model_id, 1, 200_000)
        fn = self.consumer.functions.requestPrediction(
            bytes.fromhex(self.model_id[2:]), values, 1, 200_000
        )
        receipt = send(self.w3, USER, fn, value=fee)
        ev = self.coord.contract.events.InferenceRequested().process_receipt(
            receipt, errors=DISCARD
        )[0]
        return RequestStruct(
            int(ev["args"]["requestId"]),
            self.model_id,
            ev["args"]["consumer"],
            1,
            200_000,
            int(ev["blockNumber"]),
            int(ev["args"]["fee"]),
            tuple(values),
        )

    def fulfil(self, req: RequestStruct, output: list[int], proof: bytes) -> Any:
        fn = self.coord.contract.functions.fulfill(req.as_tuple(), output, b"", proof)
        return send(self.w3, NODE, fn)


@pytest.fixture
def zk_chain(tmp_path: Path, zk_store: dict[str, Any]) -> Iterator[ZkChain]:
    """A Coordinator with the example model onboarded for Zk (real EZKL verifier, dev SRS)."""
    node = Anvil(tmp_path / "anvil.log")
    node.start()
    try:
        w3 = node.w3()
        dep = deploy_stack(w3, OWNER, node.url, CoordinatorParams(request_timeout_blocks=50))
        coord = CoordinatorClient(w3, dep.coordinator)
        register_node(w3, NODE, dep.coordinator, ETHER)
        store = ArtifactStore(tmp_path / "models")
        seed_store(zk_store, store.root)
        done = onboarding.onboard(
            None,
            store,
            coord,
            OWNER,
            zk_store["a"].onnx,
            EXAMPLE_CALIBRATION,
            onboarding.SrsChoice(dev=True),
            zk.CircuitParams(),
        )
        assert done.manifest.input_scale == ZK_SCALE
        serve_model(w3, NODE, dep.coordinator, done.model_id)
        files, manifest = circuits.check_circuit(store, done.manifest.onnx_hash)
        prover = zk.Prover(files, circuits.srs_dir(store) / manifest.srs, tmp_path / "prove")
        consumer = w3.eth.contract(
            address=dep.example_consumer, abi=load_artifact("ExampleConsumer").abi
        )
        yield ZkChain(w3, coord, consumer, done.model_id, prover)
    finally:
        node.stop()


@pytest.mark.faults
def test_aliased_output_with_an_honest_proof_is_refused(zk_chain: ZkChain) -> None:
    x = [round(v * (1 << ZK_SCALE)) for v in (0.5, -0.25, 0.75, -1.0)]
    req = zk_chain.request(x)
    proof = zk_chain.prover.prove(x, "alias")
    (y,) = proof.output
    # y - r and y + r are the same field element as y: the old Coordinator mapped them to the
    # proof's public instance and the verifier accepted a "proven" output nobody computed.
    for forged in (y - R, y + R):
        with pytest.raises(
            TransactionError, match=f"OutputOutOfFieldRange\\({req.request_id}, 0, "
        ):
            zk_chain.fulfil(req, [forged], proof.proof)
        assert zk_chain.coord.commitment(req.request_id) != ZERO  # still open
    receipt = zk_chain.fulfil(req, [y], proof.proof)  # the honest answer still goes through
    assert receipt["status"] == 1
    assert zk_chain.consumer.functions.getResult(req.request_id).call() == [True, [y], b""]


@pytest.mark.faults
def test_aliased_input_is_refused_at_request_time(zk_chain: ZkChain) -> None:
    x = [round(v * (1 << ZK_SCALE)) for v in (0.1, 0.2, -0.3, 0.4)]
    fee = zk_chain.coord.quote_fee(zk_chain.model_id, 1, 200_000)
    model = bytes.fromhex(zk_chain.model_id[2:])
    for i, aliased in ((0, x[0] + R), (2, x[2] - R)):
        values = list(x)
        values[i] = aliased
        fn = zk_chain.consumer.functions.requestPrediction(model, values, 1, 200_000)
        with pytest.raises(TransactionError, match=f"InputOutOfFieldRange\\({i}, {aliased}\\)"):
            send(zk_chain.w3, USER, fn, value=fee)
    # The same values in plain mode carry no field meaning and are still accepted.
    fn = zk_chain.consumer.functions.requestPrediction(model, [x[0] + R, *x[1:]], 0, 200_000)
    assert send(zk_chain.w3, USER, fn, value=ETHER)["status"] == 1


@dataclass
class Harness:
    w3: Web3
    field: Any
    coord: Any


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    node = Anvil(tmp_path_factory.mktemp("field") / "anvil.log")
    node.start()
    try:
        w3 = node.w3()
        address, _ = deploy(w3, OWNER, "FieldMathHarness")
        field = w3.eth.contract(address=address, abi=load_artifact("FieldMathHarness").abi)
        dep = deploy_stack(w3, OWNER, node.url)
        verifier, _ = deploy(w3, OWNER, "MockVerifier")
        coord = CoordinatorClient(w3, dep.coordinator).contract
        model_id, _ = register_raw(w3, coord, OWNER, ZK_MODEL_ONNX, (2, 1, 0, 0), verifier)
        assert model_id == ZK_MODEL
        register_node(w3, NODE, dep.coordinator, ETHER)
        serve_model(w3, NODE, dep.coordinator, ZK_MODEL)
        yield Harness(w3, field, coord)
    finally:
        node.stop()


BOUNDS = [0, 1, -1, HALF, -HALF, HALF + 1, -HALF - 1, HALF - 1, -HALF + 1, R, -R, R - 1, 1 - R]
BOUNDS += [R + 1, -R - 1, INT256_MAX, INT256_MIN, INT256_MIN + 1]
VALUES = st.one_of(
    st.sampled_from(BOUNDS),
    st.integers(HALF - 2**20, HALF + 2**20),
    st.integers(-HALF - 2**20, -HALF + 2**20),
    st.integers(-(2**64), 2**64),
    st.integers(INT256_MIN, INT256_MAX),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=VALUES)
def test_field_mapping_agrees_with_python_and_refuses_out_of_range(
    harness: Harness, x: int
) -> None:
    in_range = -HALF <= x <= HALF
    assert harness.field.functions.inRange(x).call() is in_range
    coord = harness.coord.functions.requestInference(bytes.fromhex(ZK_MODEL[2:]), [x, 0], 1, 0)
    refused = revert_name(coord, {"from": USER.address, "value": ETHER})
    if in_range:
        v = harness.field.functions.toField(x).call()
        assert v == zk.to_field(x) and 0 <= v < R
        assert harness.field.functions.fromField(v).call() == zk.from_field(v) == x
        assert refused is None
    else:
        assert revert_name(harness.field.functions.toField(x), {}) == "ValueOutOfFieldRange"
        assert refused == "InputOutOfFieldRange"


@settings(max_examples=50, deadline=None)
@given(v=st.one_of(st.sampled_from([0, 1, HALF, HALF + 1, R - 1]), st.integers(0, R - 1)))
def test_from_field_agrees_with_python(harness: Harness, v: int) -> None:
    assert harness.field.functions.fromField(v).call() == zk.from_field(v)
    assert harness.field.functions.toField(zk.from_field(v)).call() == v


def test_from_field_refuses_non_field_elements(harness: Harness) -> None:
    for v in (R, R + 1, 2**256 - 1):
        assert revert_name(harness.field.functions.fromField(v), {}) == "NotAFieldElement"


# -- 2. unbounded err and output -----------------------------------------------------------
@pytest.mark.faults
def test_oversized_error_and_wrong_output_length_are_refused(chain: Chain) -> None:
    req = chain.request([1, 2], gas=500_000)  # enough to store a 256-byte reason
    # A 70 KB reason used to be delivered and made the consumer's callback run out of gas.
    reverts_with("ErrorTooLong", lambda: chain.fulfill(req, [], err=b"x" * 70_000))
    reverts_with("ErrorTooLong", lambda: chain.fulfill(req, [], err=b"x" * 257))
    # The model has one output: a success with another length is not an answer.
    reverts_with("OutputLengthMismatch", lambda: chain.fulfill(req, [1, 2]))
    reverts_with("OutputLengthMismatch", lambda: chain.fulfill(req, []))
    zk_req = chain.request([1, 2], mode=1, model=ZK_MODEL)
    reverts_with("OutputLengthMismatch", lambda: chain.fulfill(zk_req, [1, 2], proof=b"\x01"))
    receipt = chain.fulfill(req, [], err=b"y" * 256)  # at the limit
    assert fulfilled(chain, receipt)["callbackSucceeded"] is True
    assert chain.consumer.functions.getResult(req.request_id).call() == [True, [], b"y" * 256]


# -- 3. stake that means something -----------------------------------------------------------
@pytest.mark.faults
def test_a_paused_node_cannot_deregister_and_come_back(chain: Chain) -> None:
    coord = chain.coord.contract.functions
    send(chain.w3, OWNER, coord.setNodePaused(NODE.address, True))
    send(chain.w3, NODE, coord.deregisterNode())
    # The old Coordinator forgot the pause with the node record: registering again made the
    # banned address active.
    reverts_with("NodeIsPaused", lambda: send(chain.w3, NODE, coord.registerNode(), value=ETHER))
    assert coord.getNode(NODE.address).call() == [0, False, True]
    assert not coord.isActiveNode(NODE.address).call()
    send(chain.w3, OWNER, coord.setNodePaused(NODE.address, False))  # the owner lifts the ban
    send(chain.w3, NODE, coord.registerNode(), value=ETHER)
    assert coord.isActiveNode(NODE.address).call()


@pytest.mark.faults
def test_stake_unbonds_before_it_can_leave(chain: Chain) -> None:
    coord = chain.coord.contract.functions
    delay = int(coord.unbondingBlocks().call())
    req = chain.request([1, 2])
    held = chain.w3.eth.get_balance(chain.coord.address)
    receipt = send(chain.w3, NODE, coord.deregisterNode())
    # Inactive at once, but the stake has not left (the old Coordinator sent it back here).
    assert chain.w3.eth.get_balance(chain.coord.address) == held
    assert not coord.isActiveNode(NODE.address).call()
    reverts_with("NotActiveNode", lambda: chain.fulfill(req, [3]))
    release = int(receipt["blockNumber"]) + delay
    assert coord.getUnbonding(NODE.address).call() == [ETHER, release]
    ev = chain.coord.contract.events.NodeDeregistered().process_receipt(receipt, errors=DISCARD)
    assert (ev[0]["args"]["stake"], ev[0]["args"]["releaseBlock"]) == (ETHER, release)
    reverts_with("StakeStillBonded", lambda: send(chain.w3, NODE, coord.withdrawStake()))
    mine(chain.w3, delay - 1)  # the latest block is one before release (calls run there)
    reverts_with("StakeStillBonded", lambda: send(chain.w3, NODE, coord.withdrawStake()))
    mine(chain.w3, 1)
    before = chain.w3.eth.get_balance(NODE.address)
    receipt = send(chain.w3, NODE, coord.withdrawStake())
    assert receipt["blockNumber"] > release
    cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(NODE.address) == before + ETHER - cost
    assert chain.w3.eth.get_balance(chain.coord.address) == held - ETHER
    reverts_with("NothingToWithdraw", lambda: send(chain.w3, NODE, coord.withdrawStake()))


@pytest.mark.faults
def test_unbonding_stake_is_still_slashable(tmp_path: Path) -> None:
    node = Anvil(tmp_path / "anvil.log")
    node.start()
    try:
        w3 = node.w3()
        address, _ = deploy(w3, OWNER, "SlashableCoordinator", ETHER, 10)
        coord = w3.eth.contract(address=address, abi=load_artifact("SlashableCoordinator").abi)
        fns = coord.functions
        send(w3, NODE, fns.registerNode(), value=ETHER)
        send(w3, NODE, fns.deregisterNode())
        receipt = send(w3, OWNER, fns.slash(NODE.address, 4 * ETHER // 10))
        slashed = coord.events.NodeSlashed().process_receipt(receipt, errors=DISCARD)
        assert slashed[0]["args"]["amount"] == 4 * ETHER // 10
        assert fns.getUnbonding(NODE.address).call()[0] == 6 * ETHER // 10
        reverts_with("SlashExceedsStake", lambda: send(w3, OWNER, fns.slash(NODE.address, ETHER)))
        mine(w3, 10)
        before = w3.eth.get_balance(NODE.address)
        receipt = send(w3, NODE, fns.withdrawStake())
        cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert w3.eth.get_balance(NODE.address) == before + 6 * ETHER // 10 - cost
    finally:
        node.stop()


# -- 4. wrong input length ---------------------------------------------------------------------
@pytest.mark.faults
def test_wrong_input_length_is_refused_at_request_time(chain: Chain) -> None:
    before = int(chain.coord.contract.functions.nextRequestId().call())
    fn = chain.consumer.functions.requestPrediction
    for values in ([1], [1, 2, 3]):
        # Used to be accepted: the node then spent work (and gas) answering with an error.
        reverts_with(
            "InputLengthMismatch",
            lambda v=values: send(
                chain.w3, USER, fn(bytes.fromhex(MODEL[2:]), v, 0, 200_000), value=ETHER
            ),
        )
    assert int(chain.coord.contract.functions.nextRequestId().call()) == before


# -- 5. late answers ---------------------------------------------------------------------------
@pytest.mark.faults
def test_answer_after_the_deadline_is_refused(chain: Chain) -> None:
    late = chain.request([1, 2])
    deadline = late.requested_at_block + TIMEOUT_BLOCKS
    mine(chain.w3, deadline + 1 - chain.w3.eth.block_number)  # one block past the deadline
    # The old Coordinator took this answer (and paid the node) although the consumer could
    # already cancel: which of the two happened depended on who got into a block first.
    reverts_with("RequestExpired", lambda: chain.fulfill(late, [3]))
    on_time = chain.request([1, 2])
    mine(chain.w3, TIMEOUT_BLOCKS - 1)  # the answer lands in the deadline block itself
    receipt = chain.fulfill(on_time, [3])
    assert receipt["blockNumber"] == on_time.requested_at_block + TIMEOUT_BLOCKS
    # The consumer of the late request takes its fee back.
    receipt = send(chain.w3, USER, chain.consumer.functions.cancel(late.as_tuple()))
    cancelled = chain.coord.contract.events.RequestCancelled().process_receipt(
        receipt, errors=DISCARD
    )
    assert cancelled[0]["args"]["refund"] == late.fee


# -- 6. fee changes --------------------------------------------------------------------------
@pytest.mark.faults
def test_a_fee_raise_does_not_reach_requests_in_flight(chain: Chain) -> None:
    coord = chain.coord.contract.functions
    caps, delay = coord.feeLimits().call()
    old = coord.feeConfig().call()
    reverts_with(
        "FeeAboveCap",
        lambda: send(chain.w3, OWNER, coord.setFeeConfig((caps[0] + 1, *old[1:]))),
    )
    raised = (caps[0], *old[1:])
    model = bytes.fromhex(MODEL[2:])
    old_fee = chain.coord.quote_fee(MODEL, 0, 200_000)
    # The owner front-runs a request with a raise, in the same block (the raise first).
    rpc(chain.w3, "evm_setAutomine", [False])
    try:
        hashes = []
        for account, fn, value, tip in (
            (OWNER, coord.setFeeConfig(raised), 0, 10**10),
            (
                USER,
                chain.consumer.functions.requestPrediction(model, [1, 2], 0, 200_000),
                old_fee,
                1,
            ),
        ):
            tx = fn.build_transaction(
                {
                    "from": account.address,
                    "value": value,
                    "gas": 500_000,
                    "maxPriorityFeePerGas": tip,
                    "maxFeePerGas": 10**11,
                    "nonce": chain.w3.eth.get_transaction_count(account.address, "pending"),
                    "chainId": chain.w3.eth.chain_id,
                }
            )
            signed = account.sign_transaction(tx)
            hashes.append(chain.w3.eth.send_raw_transaction(signed.raw_transaction))
        rpc(chain.w3, "evm_mine")
    finally:
        rpc(chain.w3, "evm_setAutomine", [True])
    schedule, request = (chain.w3.eth.get_transaction_receipt(h) for h in hashes)
    assert schedule["blockNumber"] == request["blockNumber"]
    assert schedule["transactionIndex"] < request["transactionIndex"]
    # The old Coordinator applied the raise at once: this request reverted (InsufficientFee).
    assert request["status"] == 1
    ev = chain.coord.contract.events.InferenceRequested().process_receipt(request, errors=DISCARD)
    assert ev[0]["args"]["fee"] == old_fee
    effective = int(schedule["blockNumber"]) + delay
    pending, at = coord.pendingFeeConfig().call()
    assert (tuple(pending), at) == (raised, effective)
    assert chain.coord.quote_fee(MODEL, 0, 200_000) == old_fee
    mine(chain.w3, effective - chain.w3.eth.block_number)  # now in force
    new_fee = chain.coord.quote_fee(MODEL, 0, 200_000)
    assert new_fee == old_fee - old[0] + caps[0]
    fn = chain.consumer.functions.requestPrediction(model, [1, 2], 0, 200_000)
    receipt = send(chain.w3, USER, fn, value=new_fee)  # the first request applies the change
    applied = chain.coord.contract.events.FeeConfigSet().process_receipt(receipt, errors=DISCARD)
    assert [list(e["args"].values()) for e in applied] == [list(raised)]
    assert coord.pendingFeeConfig().call()[1] == 0


@pytest.mark.faults
def test_overpayment_is_credited_back_not_kept_as_fee(chain: Chain) -> None:
    coord = chain.coord.contract.functions
    fee = chain.coord.quote_fee(MODEL, 0, 200_000)
    paid = ETHER  # a consumer that pays blindly
    fn = chain.consumer.functions.requestPrediction(bytes.fromhex(MODEL[2:]), [1, 2], 0, 200_000)
    receipt = send(chain.w3, USER, fn, value=paid)
    ev = chain.coord.contract.events.InferenceRequested().process_receipt(receipt, errors=DISCARD)
    request_id = int(ev[0]["args"]["requestId"])
    assert ev[0]["args"]["fee"] == fee  # the old Coordinator took all of msg.value as the fee
    credited = chain.coord.contract.events.OverpaymentCredited().process_receipt(
        receipt, errors=DISCARD
    )
    assert [(e["args"]["requestId"], e["args"]["amount"]) for e in credited] == [
        (request_id, paid - fee)
    ]
    assert coord.nodeBalance(chain.consumer.address).call() == paid - fee
    req = RequestStruct(
        request_id,
        MODEL,
        chain.consumer.address,
        0,
        200_000,
        int(receipt["blockNumber"]),
        fee,
        (1, 2),
    )
    chain.fulfill(req, [3])
    assert coord.nodeBalance(NODE.address).call() == fee  # the node earns the fee, no more
    # The example consumer's owner takes the credit out; nobody else can.
    withdraw = chain.consumer.functions.withdrawRefunds
    reverts_with("NotOwner", lambda: send(chain.w3, OUTSIDER, withdraw(OUTSIDER.address)))
    before = chain.w3.eth.get_balance(OUTSIDER.address)
    send(chain.w3, OWNER, withdraw(OUTSIDER.address))
    assert chain.w3.eth.get_balance(OUTSIDER.address) == before + paid - fee
    assert coord.nodeBalance(chain.consumer.address).call() == 0


# -- 7. who pays for an error answer ------------------------------------------------------------
@pytest.mark.faults
def test_a_zk_error_answer_pays_the_nodes_callback_gas_and_refunds_only_the_premium(
    tmp_path: Path,
) -> None:
    """Bad input costs the node: a Zk request the model cannot answer used to refund the whole
    fee to the consumer while the node paid the callback's gas. Now the node keeps the base fee
    and the callback gas; only the Zk premium in force at the request goes back, even when the
    premium changed between the request and the answer."""
    with deployed_chain(tmp_path, fee_change_delay_blocks=1) as ch:
        coord = ch.coord.contract.functions
        base, premium, opt_premium, min_gas_price, multiplier = coord.feeConfig().call()
        mine(ch.w3, TIMEOUT_BLOCKS + 1)  # changes come into force > TIMEOUT_BLOCKS apart
        req = ch.request([3, -7], mode=1, model=ZK_MODEL)
        answer_gas = 3 * 1_300  # the answer's data: 2 inputs and 1 output
        gas = 200_000 + answer_gas
        assert req.fee == base + premium + gas * min_gas_price * multiplier // 10_000
        # The owner doubles the premium while the request is in flight.
        send(
            ch.w3,
            OWNER,
            coord.setFeeConfig((base, 2 * premium, opt_premium, min_gas_price, multiplier)),
        )
        _, effective = coord.pendingFeeConfig().call()
        mine(ch.w3, effective - ch.w3.eth.block_number)
        later = ch.request([3, -7], mode=1, model=ZK_MODEL)  # priced (and applied) with the raise
        assert later.fee == req.fee + premium
        assert ch.w3.eth.block_number < req.requested_at_block + TIMEOUT_BLOCKS
        node_before = coord.nodeBalance(NODE.address).call()
        receipt = ch.fulfill(req, [], err=b"input out of the model's range")
        refunded = ch.coord.contract.events.FeeRefunded().process_receipt(receipt, errors=DISCARD)
        # The old Coordinator refunded req.fee here and the node earned nothing.
        assert [e["args"]["amount"] for e in refunded] == [premium]
        assert coord.nodeBalance(ch.consumer.address).call() == premium
        earned = coord.nodeBalance(NODE.address).call() - node_before
        assert earned == req.fee - premium
        assert earned >= int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        # A request made under the new configuration refunds the new premium.
        receipt = ch.fulfill(later, [], err=b"failed")
        refunded = ch.coord.contract.events.FeeRefunded().process_receipt(receipt, errors=DISCARD)
        assert [e["args"]["amount"] for e in refunded] == [2 * premium]


def test_callback_gas_is_priced_from_the_base_fee(chain: Chain) -> None:
    """The callback gas used to cost a fixed 1 gwei whatever the chain's gas price: with a base
    fee of 50 gwei a node lost money on every callback. Now it is priced at the block's base fee
    (never below the configured floor) times the multiplier."""
    coord = chain.coord.contract.functions
    base, _, _, min_gas_price, multiplier = coord.feeConfig().call()
    basefee = 50 * 10**9
    assert basefee > min_gas_price
    normal = int(chain.w3.eth.get_block("pending")["baseFeePerGas"])
    try:
        rpc(chain.w3, "anvil_setNextBlockBaseFeePerGas", [hex(basefee)])
        model = bytes.fromhex(MODEL[2:])
        fn = chain.consumer.functions.requestPrediction(model, [1, 2], 0, 200_000)
        tx = fn.build_transaction(
            {
                "from": USER.address,
                "value": ETHER // 10,  # the excess is credited back
                "gas": 500_000,
                "maxPriorityFeePerGas": 1,
                "maxFeePerGas": 10**11,
                "nonce": chain.w3.eth.get_transaction_count(USER.address, "pending"),
                "chainId": chain.w3.eth.chain_id,
            }
        )
        tx_hash = chain.w3.eth.send_raw_transaction(USER.sign_transaction(tx).raw_transaction)
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        assert chain.w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"] == basefee
        ev = chain.coord.contract.events.InferenceRequested().process_receipt(
            receipt, errors=DISCARD
        )
        answer_gas = 3 * 1_300  # the answer's data: 2 inputs and 1 output
        assert (
            ev[0]["args"]["fee"] == base + (200_000 + answer_gas) * basefee * multiplier // 10_000
        )
    finally:  # anvil keeps its base fee across snapshots: put it back for the next tests
        rpc(chain.w3, "anvil_setNextBlockBaseFeePerGas", [hex(normal)])
        rpc(chain.w3, "evm_mine")
    # A quote at a low base fee uses the floor.
    assert chain.coord.quote_fee(MODEL, 0, 200_000) >= base + (200_000 + 3 * 1_300) * min_gas_price


def test_fee_caps_are_checked_at_construction(tmp_path: Path) -> None:
    node = Anvil(tmp_path / "anvil.log")
    node.start()
    try:
        w3 = node.w3()
        params = CoordinatorParams(base_fee=2, max_base_fee=1)
        with pytest.raises(Exception) as info:  # web3 raises it while estimating gas
            deploy(w3, OWNER, "Coordinator", *params.constructor_args())
        revert = revert_from_exception(info.value)
        assert revert is not None
        assert (revert.name, revert.error_args) == ("FeeAboveCap", (0, 2, 1))
    finally:
        node.stop()


# -- 7. model squatting ----------------------------------------------------------------------
# The model id used to be whatever SHA-256 the registrant supplied: anyone could register the
# hash of someone else's ONNX first, with a verifier that accepts anything (or other scales),
# and the owner could never register it. The id is now the Coordinator's hash of the content.
SQUATTED_ONNX = "0x" + "5a" * 32
ZK_SHAPE = (2, 1, 0, 0)


def fulfil_gas(ch: Chain, req: RequestStruct, output: list[int], gas: int = 3_000_000) -> Any:
    """Send ``fulfill`` without simulating it first (it may revert): the receipt."""
    fn = ch.coord.contract.functions.fulfill(req.as_tuple(), output, b"", b"\x01")
    tx = fn.build_transaction(
        {
            "from": NODE.address,
            "nonce": ch.w3.eth.get_transaction_count(NODE.address, "pending"),
            "chainId": ch.w3.eth.chain_id,
            "gas": gas,
        }
    )
    tx_hash = ch.w3.eth.send_raw_transaction(NODE.sign_transaction(tx).raw_transaction)
    return ch.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)


def registered(ch: Chain, receipt: Any) -> list[Any]:
    return list(ch.coord.contract.events.ModelRegistered().process_receipt(receipt, errors=DISCARD))


def test_a_squatter_cannot_take_the_owners_model_id(chain: Chain) -> None:
    coord = chain.coord.contract
    always_true, _ = deploy(chain.w3, OUTSIDER, "AlwaysTrueVerifier")
    squatted, _ = register_raw(chain.w3, coord, OUTSIDER, SQUATTED_ONNX, ZK_SHAPE, always_true)
    # The owner registers the same file with the honest verifier afterwards: it used to revert
    # ModelAlreadyRegistered; now it is another content, so another id, and the owner's.
    honest, receipt = register_raw(
        chain.w3, coord, OWNER, SQUATTED_ONNX, ZK_SHAPE, chain.verifier.address
    )
    assert honest != squatted and len(registered(chain, receipt)) == 1
    assert honest == content_model_id(SQUATTED_ONNX, artifact_code_hash("MockVerifier"), *ZK_SHAPE)
    info = chain.coord.model(honest)
    assert (info["owner"], info["verifier"]) == (OWNER.address, chain.verifier.address)
    for model in (honest, squatted):  # the stack's node serves both (requests need a server)
        serve_model(chain.w3, NODE, chain.coord.address, model)
    # A Zk request on the honest id: an unproven output is refused by the honest verifier...
    req = chain.request([3, 4], mode=1, model=honest)
    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(False))  # the proof is not valid
    reverts_with("InvalidProof", lambda: chain.fulfill(req, [5], proof=b"\x01"))
    assert chain.coord.commitment(req.request_id) != ZERO
    # ...while the squatter's verifier only ever answers requests that named the squatter's id.
    squat_req = chain.request([3, 4], mode=1, model=squatted)
    assert chain.fulfill(squat_req, [5], proof=b"\x01")["status"] == 1


def test_the_same_file_with_other_scales_is_another_model(chain: Chain) -> None:
    coord = chain.coord.contract
    first, _ = register_raw(chain.w3, coord, OUTSIDER, SQUATTED_ONNX, (2, 1, 8, 8))
    second, _ = register_raw(chain.w3, coord, OWNER, SQUATTED_ONNX, (2, 1, 16, 16))
    assert first != second
    assert chain.coord.model(first)["input_scale"] == 8
    assert chain.coord.model(second)["input_scale"] == 16
    assert chain.coord.model(second)["owner"] == OWNER.address


def test_registering_the_same_content_again_changes_nothing(chain: Chain) -> None:
    coord = chain.coord.contract
    # Used to revert ModelAlreadyRegistered.
    again, receipt = register_raw(chain.w3, coord, OUTSIDER, MODEL_ONNX, (2, 1, 16, 16))
    assert again == MODEL
    assert registered(chain, receipt) == []  # no second event
    info = chain.coord.model(MODEL)
    assert info["owner"] == OWNER.address and info["onnx_hash"] == MODEL_ONNX


def test_a_scale_above_64_bits_is_refused(chain: Chain) -> None:
    fn = chain.coord.contract.functions.registerModel
    for scales in ((65, 16), (16, 65), (255, 255)):
        reverts_with(
            "ScaleTooLarge",
            lambda s=scales: send(
                chain.w3, OWNER, fn(bytes.fromhex(SQUATTED_ONNX[2:]), 2, 1, *s, "0x" + "00" * 20)
            ),
        )
    model_id, _ = register_raw(chain.w3, chain.coord.contract, OWNER, SQUATTED_ONNX, (2, 1, 64, 0))
    assert chain.coord.model(model_id)["input_scale"] == 64


def test_a_verifier_returning_a_huge_answer_is_invalid_and_costs_no_more(chain: Chain) -> None:
    coord = chain.coord.contract
    one_word, _ = deploy(chain.w3, OWNER, "HugeReturnVerifier", 32)  # answers exactly `true`
    huge, _ = deploy(chain.w3, OWNER, "HugeReturnVerifier", 100_000)  # `true` + 100 KB
    small_id, _ = register_raw(chain.w3, coord, OWNER, "0x" + "a1" * 32, ZK_SHAPE, one_word)
    huge_id, _ = register_raw(chain.w3, coord, OWNER, "0x" + "a2" * 32, ZK_SHAPE, huge)
    for model in (small_id, huge_id):
        serve_model(chain.w3, NODE, chain.coord.address, model)
    small_req = chain.request([1, 2], mode=1, model=small_id)
    huge_req = chain.request([1, 2], mode=1, model=huge_id)

    ok = fulfil_gas(chain, small_req, [3])
    assert ok["status"] == 1
    # The old Coordinator decoded the 100 KB answer as `true` (and copied all of it).
    reverts_with("InvalidProof", lambda: chain.fulfill(huge_req, [3], proof=b"\x01"))
    failed = fulfil_gas(chain, huge_req, [3])
    assert failed["status"] == 0 and chain.coord.commitment(huge_req.request_id) != ZERO
    # Refused before any state change, the hostile answer costs less than the honest one (78k
    # against 149k gas today): the verifier's 100 KB are its own memory, under its gas cap,
    # and none of it is copied into the Coordinator.
    assert failed["gasUsed"] < ok["gasUsed"], (failed["gasUsed"], ok["gasUsed"])


def test_a_verifier_whose_code_changed_is_refused(chain: Chain) -> None:
    verifier, _ = deploy(chain.w3, OWNER, "MockVerifier")
    model_id, _ = register_raw(
        chain.w3, chain.coord.contract, OWNER, SQUATTED_ONNX, ZK_SHAPE, verifier
    )
    serve_model(chain.w3, NODE, chain.coord.address, model_id)
    req = chain.request([1, 2], mode=1, model=model_id)
    honest_code = "0x" + bytes(chain.w3.eth.get_code(Web3.to_checksum_address(verifier))).hex()
    accept_all = load_artifact("AlwaysTrueVerifier").deployed_bytecode
    rpc(chain.w3, "anvil_setCode", [verifier, accept_all])  # e.g. an upgraded proxy
    reverts_with("VerifierCodeChanged", lambda: chain.fulfill(req, [3], proof=b"\x01"))
    assert chain.coord.commitment(req.request_id) != ZERO
    rpc(chain.w3, "anvil_setCode", [verifier, honest_code])
    assert chain.fulfill(req, [3], proof=b"\x01")["status"] == 1
