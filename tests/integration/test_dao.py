"""ScreenedGovernor end to end on anvil: proposals screened by the proved model (Zk mode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import ETHER, send
from oracle.dev.keys import ANVIL_DEV_KEYS, NODE_KEY
from oracle.errors import TransactionError
from oracle.examples.dao import (
    DRAIN,
    GRANT,
    GRANTS_PROGRAM,
    SCREENING_CALIBRATION,
    SCREENING_MODEL,
    STRANGER,
    TIMELOCK_DELAY_S,
    TOKEN,
    VOTING_DELAY,
    VOTING_PERIOD,
    Dao,
    Screening,
    deploy_dao,
    mine,
    try_send,
)
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from tests.support.chain import deploy_consumer
from tests.support.models import seed_from
from tests.support.stack import Stack
from tests.support.wait import wait_for

# Screenings expire after 5 blocks here, so the expiry paths can be walked quickly.
pytestmark = [pytest.mark.integration, pytest.mark.request_timeout_blocks(5)]

OWNER: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
MEMBER: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[2])
ATTACKER: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[3])
NODE: LocalAccount = Account.from_key(NODE_KEY)
HOLDINGS = [(OWNER, 600_000 * TOKEN), (MEMBER, 350_000 * TOKEN), (ATTACKER, 50_000 * TOKEN)]
GRANT_PROPOSAL = ([GRANTS_PROGRAM], [GRANT], "Grant 1 ETH to the grants program")
DRAIN_PROPOSAL = ([STRANGER], [DRAIN], "Move 90 ETH to the new treasury manager")
SCALES = (13, 13)  # what EZKL calibration picks (models/governance/MODEL_CARD.md)
TOLERANCE = 0.01  # |circuit - onnxruntime| per logit (MODEL_CARD.md)


@pytest.fixture
def screening_circuit(circuit_of: Callable[[Path, Path], Path]) -> Path:
    """The screening model's circuit, built once per run (each test still onboards it)."""
    return circuit_of(SCREENING_MODEL, SCREENING_CALIBRATION)


def setup_dao(stack: Stack, circuit: Path) -> Dao:
    seed_from(circuit, Path(stack.settings.store.path))
    done = onboarding.onboard(
        stack.db,
        ArtifactStore(stack.settings.store.path),
        stack.coordinator,
        OWNER,
        SCREENING_MODEL,
        SCREENING_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )
    assert (done.manifest.input_scale, done.manifest.output_scale) == SCALES
    stack.local.serve(done.model_id)  # registered after the node started: declare it
    return deploy_dao(stack.w3, OWNER, stack.deployment.coordinator, done.model_id, HOLDINGS)


def event_args(dao: Dao, name: str, proposal_id: int) -> list[dict[str, Any]]:
    logs = getattr(dao.governor.events, name)().get_logs(
        from_block=0, argument_filters={"proposalId": proposal_id}
    )
    return [dict(log["args"]) for log in logs]


def onnx_logits(inputs: list[int]) -> list[float]:
    session = ort.InferenceSession(str(SCREENING_MODEL), providers=["CPUExecutionProvider"])
    x = (np.array(inputs, dtype=np.float64) / (1 << SCALES[0])).astype(np.float32)
    return [float(v) for v in session.run(None, {"input": x.reshape(1, -1)})[0].reshape(-1)]


def vote_through(stack: Stack, dao: Dao, routine: int, draining: int) -> None:
    mine(stack.w3, VOTING_DELAY + 1)
    for voter in (OWNER, MEMBER):
        send(stack.w3, voter, dao.governor.functions.castVote(routine, 1))
    send(stack.w3, ATTACKER, dao.governor.functions.castVote(draining, 1))
    mine(stack.w3, VOTING_PERIOD + 1)
    for pid in (routine, draining):
        assert dao.governor.functions.state(pid).call() == 4  # Succeeded


def test_routine_proposal_passes_and_draining_proposal_is_blocked(
    stack: Stack, screening_circuit: Path, running_node: Any
) -> None:
    dao = setup_dao(stack, screening_circuit)
    routine, _ = dao.propose(OWNER, *GRANT_PROPOSAL)
    draining, _ = dao.propose(ATTACKER, *DRAIN_PROPOSAL)
    # No prover is running yet: a Zk screening cannot be answered, so both stay pending.
    assert dao.screening(routine)[0] == Screening.PENDING
    vote_through(stack, dao, routine, draining)
    queue_grant = dao.governor.functions.queue(*dao.args(*GRANT_PROPOSAL))
    assert try_send(stack.w3, OWNER, queue_grant) == f"ScreeningPending({routine},)"
    rescreen = dao.governor.functions.rescreen(routine)
    assert try_send(stack.w3, OWNER, rescreen).startswith("RescreenNotAllowed(")
    # The screenings outlived their deadline (5 blocks here) while the votes ran: nobody may
    # answer them now. Cancel them and ask again; the prover answers the new requests.
    for pid in (routine, draining):
        req = _request(stack, int(event_args(dao, "ScreeningRequested", pid)[0]["requestId"]))
        cancel = dao.governor.functions.cancelScreening(req.as_tuple())
        assert try_send(stack.w3, MEMBER, cancel) == "ok"
        assert try_send(stack.w3, MEMBER, dao.governor.functions.rescreen(pid)) == "ok"

    prover = stack.start_prover()
    try:
        assert dao.wait_screened(routine, timeout=120) == Screening.PASSED
        assert dao.wait_screened(draining, timeout=120) == Screening.FLAGGED
    finally:
        prover.stop()

    _, risk_class, features = dao.screening(draining)
    assert risk_class == 2 and features[0] == pytest.approx(0.9) and features[1] == 1.0
    (flagged,) = event_args(dao, "ProposalFlagged", draining)
    assert "90% of the treasury" in flagged["reason"]
    assert "100% of calls to never-seen targets" in flagged["reason"]
    assert event_args(dao, "ProposalFlagged", routine) == []
    for pid, passed in ((routine, True), (draining, False)):
        (screened,) = event_args(dao, "ProposalScreened", pid)
        asked = event_args(dao, "ScreeningRequested", pid)[-1]
        assert screened["passed"] is passed
        expected = onnx_logits([int(v) for v in asked["input"]])
        got = [int(v) / (1 << SCALES[1]) for v in screened["logits"]]
        assert np.max(np.abs(np.array(got) - expected)) < TOLERANCE

    queue_drain = dao.governor.functions.queue(*dao.args(*DRAIN_PROPOSAL))
    assert try_send(stack.w3, OWNER, queue_drain) == f"ProposalBlocked({draining},)"
    assert try_send(stack.w3, OWNER, queue_grant) == "ok"
    mine(stack.w3, 1, TIMELOCK_DELAY_S + 1)
    before = stack.w3.eth.get_balance(GRANTS_PROGRAM)
    execute = dao.governor.functions.execute(*dao.args(*GRANT_PROPOSAL))
    assert try_send(stack.w3, OWNER, execute) == "ok"
    assert stack.w3.eth.get_balance(GRANTS_PROGRAM) - before == GRANT
    assert stack.w3.eth.get_balance(STRANGER) == 0
    execute_drain = dao.governor.functions.execute(*dao.args(*DRAIN_PROPOSAL))
    assert try_send(stack.w3, OWNER, execute_drain) != "ok"
    assert stack.w3.eth.get_balance(dao.timelock.address) == 99 * ETHER


def _request(stack: Stack, request_id: int) -> RequestStruct:
    (log,) = stack.coordinator.contract.events.InferenceRequested().get_logs(
        from_block=0, argument_filters={"requestId": request_id}
    )
    a = log["args"]
    return RequestStruct(
        request_id,
        "0x" + bytes(a["modelId"]).hex(),
        a["consumer"],
        int(a["mode"]),
        int(a["callbackGasLimit"]),
        int(log["blockNumber"]),
        int(a["fee"]),
        tuple(int(v) for v in a["input"]),
    )


@pytest.mark.no_worker
def test_error_answer_leaves_proposal_unscreened_until_rescreened(
    stack: Stack, screening_circuit: Path
) -> None:
    dao = setup_dao(stack, screening_circuit)
    routine, request_id = dao.propose(OWNER, *GRANT_PROPOSAL)
    req = _request(stack, request_id)
    coordinator = stack.coordinator.contract
    send(stack.w3, NODE, coordinator.functions.fulfill(req.as_tuple(), [], b"model failed", b""))
    assert dao.screening(routine)[0] == Screening.ERRORED
    (failed,) = event_args(dao, "ScreeningFailed", routine)
    assert failed["err"] == b"model failed" and failed["requestId"] == request_id
    # The Zk premium comes back (the node keeps the base fee and the callback gas).
    premium = coordinator.functions.feeConfig().call()[1]
    assert coordinator.functions.nodeBalance(dao.governor.address).call() == premium
    before = stack.w3.eth.get_balance(dao.governor.address)
    send(stack.w3, MEMBER, dao.governor.functions.reclaimRefunds())
    assert stack.w3.eth.get_balance(dao.governor.address) - before == premium

    receipt = send(stack.w3, MEMBER, dao.governor.functions.rescreen(routine))
    asked = dao.governor.events.ScreeningRequested().process_receipt(receipt, errors=DISCARD)
    again = int(asked[0]["args"]["requestId"])
    assert again != request_id and list(asked[0]["args"]["input"]) == list(req.input)
    assert dao.governor.functions.proposalOfRequest(again).call() == routine
    assert dao.screening(routine)[0] == Screening.PENDING
    wait_for(lambda: stack.coordinator.commitment(again) != b"\0" * 32, 10, "the new request")


@pytest.mark.no_worker
def test_unanswered_screening_can_be_cancelled_after_its_deadline(
    stack: Stack, screening_circuit: Path
) -> None:
    dao = setup_dao(stack, screening_circuit)
    routine, request_id = dao.propose(OWNER, *GRANT_PROPOSAL)
    req = _request(stack, request_id)
    cancel = dao.governor.functions.cancelScreening(req.as_tuple())
    assert try_send(stack.w3, MEMBER, cancel).startswith("RequestNotExpired(")
    mine(stack.w3, 6)  # the stack's Coordinator times requests out after 5 blocks
    before = stack.w3.eth.get_balance(dao.governor.address)
    assert try_send(stack.w3, MEMBER, cancel) == "ok"
    assert stack.w3.eth.get_balance(dao.governor.address) - before == req.fee
    assert dao.screening(routine)[0] == Screening.ERRORED
    assert try_send(stack.w3, MEMBER, cancel) == f"NoPendingScreening({request_id},)"
    assert try_send(stack.w3, MEMBER, dao.governor.functions.rescreen(routine)) == "ok"
    assert dao.screening(routine)[0] == Screening.PENDING


@pytest.mark.faults
def test_pending_screening_whose_callback_failed_can_be_rescreened(
    stack: Stack, screening_circuit: Path
) -> None:
    dao = setup_dao(stack, screening_circuit)
    routine, request_id = dao.propose(OWNER, *GRANT_PROPOSAL)
    req = _request(stack, request_id)
    rescreen = dao.governor.functions.rescreen(routine)
    # While the Coordinator still holds the request, a second screening is not allowed.
    assert try_send(stack.w3, MEMBER, rescreen).startswith("RescreenNotAllowed(")
    # Make the governor's callback fail (as a 70 KB error used to): swap in a reverting
    # consumer's code for the fulfilment only; the governor's storage stays as it is.
    reverting = deploy_consumer(stack.w3, "RevertingConsumer", stack.deployment.coordinator)
    code = stack.w3.eth.get_code(dao.governor.address)
    set_code = "anvil_setCode"
    stack.w3.provider.make_request(  # type: ignore[arg-type]
        set_code, [dao.governor.address, stack.w3.eth.get_code(reverting.address).to_0x_hex()]
    )
    coordinator = stack.coordinator.contract
    receipt = send(
        stack.w3, NODE, coordinator.functions.fulfill(req.as_tuple(), [], b"model failed", b"")
    )
    stack.w3.provider.make_request(set_code, [dao.governor.address, code.to_0x_hex()])  # type: ignore[arg-type]
    (ev,) = stack.coordinator.fulfilled_in_receipt(receipt)
    assert ev["callbackSucceeded"] is False
    assert stack.coordinator.commitment(request_id) == b"\0" * 32
    assert dao.screening(routine)[0] == Screening.PENDING  # stuck, before rescreen allowed this
    cancel = dao.governor.functions.cancelScreening(req.as_tuple())
    assert try_send(stack.w3, MEMBER, cancel).startswith("RequestNotPending(")
    receipt = send(stack.w3, MEMBER, rescreen)
    asked = dao.governor.events.ScreeningRequested().process_receipt(receipt, errors=DISCARD)
    again = int(asked[0]["args"]["requestId"])
    assert again != request_id and stack.coordinator.commitment(again) != b"\0" * 32
    assert try_send(stack.w3, MEMBER, rescreen).startswith("RescreenNotAllowed(")


@pytest.mark.no_worker
def test_proposal_spam_is_refused_and_spammers_pay_their_own_screening(
    stack: Stack, screening_circuit: Path
) -> None:
    """Governance spam: an address with no votes used to propose as often as it liked, each
    screening paid from the DAO's budget (11 proposals spent it all and honest proposals
    reverted). Now a proposer needs 1 % of the votes and pays its screening fee."""
    dao = setup_dao(stack, screening_circuit)
    w3 = stack.w3
    nobody: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[4])
    budget = w3.eth.get_balance(dao.governor.address)
    fee = dao.screening_fee()
    spam = dao.governor.functions.proposeWithFee([STRANGER], [0], [b""], "spam")
    with pytest.raises(TransactionError, match="GovernorInsufficientProposerVotes"):
        send(w3, nobody, spam, value=fee)
    unpaid = dao.governor.functions.propose([STRANGER], [0], [b""], "unpaid")
    assert try_send(w3, nobody, unpaid).startswith("GovernorInsufficientProposerVotes(")
    # A holder above the threshold cannot make the DAO pay either.
    assert try_send(w3, ATTACKER, unpaid) == f"ScreeningFeeRequired({fee}, 0)"
    short = dao.governor.functions.proposeWithFee([STRANGER], [0], [b""], "underpaid")
    with pytest.raises(TransactionError, match="ScreeningFeeRequired"):
        send(w3, ATTACKER, short, value=fee - 1)
    # Eleven paid proposals (with an overpayment each, sent back) leave the budget untouched.
    for i in range(11):
        fn = dao.governor.functions.proposeWithFee([STRANGER], [0], [b""], f"spam {i}")
        before = w3.eth.get_balance(ATTACKER.address)
        receipt = send(w3, ATTACKER, fn, value=2 * fee)
        gas_cost = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        assert before - w3.eth.get_balance(ATTACKER.address) == fee + gas_cost
    assert w3.eth.get_balance(dao.governor.address) == budget
    routine, _ = dao.propose(OWNER, *GRANT_PROPOSAL)  # the honest proposal still goes through
    assert dao.screening(routine)[0] == Screening.PENDING


def test_governor_fits_the_contract_size_limit() -> None:
    from oracle.paths import ROOT

    artifact = json.loads(Path(ROOT / "solidity" / "out" / "ScreenedGovernor.json").read_text())
    assert len(str(artifact["deployedBytecode"]).removeprefix("0x")) // 2 <= onboarding.EIP170_LIMIT
