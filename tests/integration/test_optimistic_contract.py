"""Optimistic mode on the real Coordinator (anvil, no node): every rule of the dispute game.

An answer is posted with a bond; the consumer hears nothing until it is finalised after the
challenge window, or proven after a challenge. An unproven challenged answer is slashed and
never delivered, and the request re-opens in Zk mode for the fee already paid. Deadlines are
fixed when the answer is posted; after the one terminal resolution every action reverts.
(Peers' known failures each have a test here: a consumer called before the window closed, a
reverting callback that blocks settlement, a last-second move that resolves a game early, a
move after resolution.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import ETHER, CoordinatorParams, register_node, send, serve_model
from oracle.chain.optimistic import ClaimStruct, PostedAnswer
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.types import Mode
from tests.support.chain import mine
from tests.support.contract import (
    NODE,
    OUTSIDER,
    OWNER,
    USER,
    ZK_MODEL,
    Chain,
    reverts_with,
)

pytestmark = pytest.mark.integration

PARAMS = CoordinatorParams()  # the deployed chain's optimistic configuration
NODE2 = Account.from_key(ANVIL_DEV_KEYS[4])
OUTPUT = [7]


def optimistic_request(
    chain: Chain, consumer: Any = None, values: list[int] | None = None
) -> RequestStruct:
    return chain.request(values or [3, -4], consumer=consumer, mode=Mode.OPTIMISTIC, model=ZK_MODEL)


def post(
    chain: Chain,
    req: RequestStruct,
    output: list[int] = OUTPUT,
    sender: Any = NODE,
    value: int = PARAMS.node_bond,
) -> PostedAnswer:
    receipt = send(
        chain.w3,
        sender,
        chain.coord.contract.functions.postOptimistic(req.as_tuple(), output),
        value=value,
    )
    (posted,) = chain.coord.posted_in_receipt(receipt)
    return posted


def challenge(
    chain: Chain, req: RequestStruct, claim: ClaimStruct, sender: Any = OUTSIDER
) -> ClaimStruct:
    send(
        chain.w3,
        sender,
        chain.coord.contract.functions.challenge(req.as_tuple(), claim.as_tuple()),
        value=PARAMS.challenger_bond,
    )
    return replace(claim, challenger=sender.address, challenger_bond=PARAMS.challenger_bond)


def finalize(chain: Chain, req: RequestStruct, claim: ClaimStruct, sender: Any = OUTSIDER) -> Any:
    return send(
        chain.w3, sender, chain.coord.contract.functions.finalize(req.as_tuple(), claim.as_tuple())
    )


def prove(chain: Chain, req: RequestStruct, claim: ClaimStruct, sender: Any = NODE) -> Any:
    return send(
        chain.w3,
        sender,
        chain.coord.contract.functions.proveOptimistic(req.as_tuple(), claim.as_tuple(), b"proof"),
    )


def balance(chain: Chain, who: str) -> int:
    return int(chain.coord.contract.functions.nodeBalance(who).call())


def result(chain: Chain, req: RequestStruct, consumer: Any = None) -> list[Any]:
    return list((consumer or chain.consumer).functions.getResult(req.request_id).call())


def blocks_until(chain: Chain, block: int) -> None:
    """Mine so that the next transaction lands in ``block``."""
    mine(chain.w3, block - chain.w3.eth.block_number - 1)


def at_block(chain: Chain, block: int) -> None:
    """Mine up to ``block``: calls (and the simulation before each send) see it as the current
    block; a transaction sent next lands one block later."""
    mine(chain.w3, block - chain.w3.eth.block_number)


def test_unchallenged_answer_reaches_the_consumer_once_after_the_window(chain: Chain) -> None:
    req = optimistic_request(chain)
    assert req.fee == chain.coord.quote_fee(ZK_MODEL, Mode.OPTIMISTIC, 200_000)
    posted = post(chain, req)
    assert posted.challenge_deadline == posted.block_number + PARAMS.challenge_window_blocks
    assert posted.proof_deadline == posted.challenge_deadline + PARAMS.proof_window_blocks
    claim = posted.claim()
    # Posted, not delivered: the consumer hears nothing inside the window.
    assert result(chain, req)[0] is False
    assert chain.coord.commitment(req.request_id) == b"\0" * 32  # no second answer possible
    reverts_with("RequestNotPending", lambda: chain.fulfill(req, [], err=b"late"))
    # The last block of the window still belongs to challengers: no early resolution.
    at_block(chain, posted.challenge_deadline)
    reverts_with("ChallengeWindowOpen", lambda: finalize(chain, req, claim))
    mine(chain.w3, 1)
    node_before = balance(chain, NODE.address)
    receipt = finalize(chain, req, claim)
    assert result(chain, req) == [True, OUTPUT, b""]
    (ev,) = chain.coord.contract.events.InferenceFulfilled().process_receipt(
        receipt, errors=DISCARD
    )
    assert ev["args"]["node"] == NODE.address and ev["args"]["callbackSucceeded"] is True
    assert balance(chain, NODE.address) - node_before == PARAMS.node_bond + req.fee
    assert chain.coord.contract.functions.openClaims(NODE.address).call() == 0
    # One terminal resolution: every later move reverts.
    reverts_with("NoClaim", lambda: finalize(chain, req, claim))
    reverts_with("NoClaim", lambda: challenge(chain, req, claim))
    reverts_with("NoClaim", lambda: prove(chain, req, replace(claim, challenger=OUTSIDER.address)))


def test_a_challenge_in_the_last_block_of_the_window_is_taken_and_one_after_is_refused(
    chain: Chain,
) -> None:
    req = optimistic_request(chain)
    posted = post(chain, req)
    blocks_until(chain, posted.challenge_deadline)
    challenged = challenge(chain, req, posted.claim())  # lands in the deadline block itself
    reverts_with("AlreadyChallenged", lambda: challenge(chain, req, challenged, sender=USER))
    # A fresh answer: a challenge one block after its window is refused.
    other = optimistic_request(chain, values=[1, 1])
    late = post(chain, other)
    at_block(chain, late.challenge_deadline + 1)
    reverts_with("ChallengeWindowClosed", lambda: challenge(chain, other, late.claim()))


def test_frivolous_challenge_loses_its_bond_to_the_proving_node(chain: Chain) -> None:
    req = optimistic_request(chain)
    posted = post(chain, req)
    claim = challenge(chain, req, posted.claim())
    # Nothing is delivered while the dispute is open, even after the challenge window.
    at_block(chain, posted.challenge_deadline + 1)
    reverts_with("ProofWindowOpen", lambda: finalize(chain, req, claim))
    assert result(chain, req)[0] is False
    # A proof the verifier refuses changes nothing.
    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(False))
    reverts_with("InvalidProof", lambda: prove(chain, req, claim, sender=USER))
    send(chain.w3, OWNER, chain.verifier.functions.setAnswer(True))
    node_before, challenger_before = balance(chain, NODE.address), balance(chain, OUTSIDER.address)
    receipt = prove(chain, req, claim, sender=USER)  # anyone may prove
    defeated = chain.coord.contract.events.ChallengeDefeated().process_receipt(
        receipt, errors=DISCARD
    )
    assert [e["args"]["challengerBond"] for e in defeated] == [PARAMS.challenger_bond]
    assert result(chain, req) == [True, OUTPUT, b""]
    assert (
        balance(chain, NODE.address) - node_before
        == PARAMS.node_bond + PARAMS.challenger_bond + req.fee
    )
    assert balance(chain, OUTSIDER.address) == challenger_before  # the bond is gone
    reverts_with("NoClaim", lambda: finalize(chain, req, claim))


def test_unproven_answer_is_slashed_never_delivered_and_reopened_in_zk(chain: Chain) -> None:
    register_node(chain.w3, NODE2, chain.coord.address, ETHER)
    serve_model(chain.w3, NODE2, chain.coord.address, ZK_MODEL)
    req = optimistic_request(chain)
    wrong = post(chain, req, output=[-999], sender=chain_assignee(chain, req))
    cheater = Account.from_key(key_of(wrong.node))
    claim = challenge(chain, req, wrong.claim())
    at_block(chain, wrong.proof_deadline + 1)
    reverts_with("ProofWindowClosed", lambda: prove(chain, req, claim, sender=cheater))
    stake_before = chain.coord.contract.functions.getNode(cheater.address).call()[0]
    challenger_before = balance(chain, OUTSIDER.address)
    burned_before = chain.coord.contract.functions.burnedWei().call()
    contract_before = chain.w3.eth.get_balance(chain.coord.address)
    receipt = finalize(chain, req, claim, sender=USER)
    (slashed,) = chain.coord.contract.events.OptimisticAnswerSlashed().process_receipt(
        receipt, errors=DISCARD
    )
    args = slashed["args"]
    assert args["slashed"] == PARAMS.node_bond + PARAMS.stake_slash
    assert args["toChallenger"] == args["slashed"] * PARAMS.challenger_share_bps // 10_000
    assert (
        args["burned"] == args["slashed"] - args["toChallenger"] > 0
    )  # self-challenging does not pay
    assert (
        chain.coord.contract.functions.getNode(cheater.address).call()[0]
        == stake_before - PARAMS.stake_slash
    )
    assert (
        balance(chain, OUTSIDER.address) - challenger_before
        == PARAMS.challenger_bond + args["toChallenger"]
    )
    assert chain.coord.contract.functions.burnedWei().call() - burned_before == args["burned"]
    assert contract_before - chain.w3.eth.get_balance(chain.coord.address) == args["burned"]
    # The disputed output never reached the consumer, and no fulfilment event was emitted.
    assert result(chain, req)[0] is False
    assert not chain.coord.contract.events.InferenceFulfilled().process_receipt(
        receipt, errors=DISCARD
    )
    # Re-opened in Zk mode, for the same fee, assigned to another node.
    (reopened,) = chain.coord.contract.events.RequestReopened().process_receipt(
        receipt, errors=DISCARD
    )
    (assigned,) = chain.coord.contract.events.RequestAssigned().process_receipt(
        receipt, errors=DISCARD
    )
    assert reopened["args"]["mode"] == Mode.ZK and reopened["args"]["fee"] == req.fee
    honest = NODE2 if cheater.address == NODE.address else NODE
    assert assigned["args"]["node"] == honest.address
    again = replace(req, mode=int(Mode.ZK), requested_at_block=int(receipt["blockNumber"]))
    reverts_with("NoClaim", lambda: finalize(chain, req, claim))
    reverts_with("CommitmentMismatch", lambda: chain.fulfill(req, [5], proof=b"p", sender=honest))
    chain.fulfill(again, [5], proof=b"p", sender=honest)
    assert result(chain, req) == [True, [5], b""]


def test_a_reverting_consumer_does_not_block_finalisation_or_bonds(chain: Chain) -> None:
    reverting = chain.deploy_consumer("RevertingConsumer")
    req = optimistic_request(chain, consumer=reverting)
    posted = post(chain, req)
    at_block(chain, posted.challenge_deadline + 1)
    node_before = balance(chain, NODE.address)
    receipt = finalize(chain, req, posted.claim())
    (ev,) = chain.coord.contract.events.InferenceFulfilled().process_receipt(
        receipt, errors=DISCARD
    )
    assert ev["args"]["callbackSucceeded"] is False
    assert balance(chain, NODE.address) - node_before == PARAMS.node_bond + req.fee


def test_unbonding_cannot_strand_open_bonds_or_escape_slashing(chain: Chain) -> None:
    req = optimistic_request(chain)
    posted = post(chain, req)
    send(chain.w3, NODE, chain.coord.contract.functions.deregisterNode())
    _, release = chain.coord.contract.functions.getUnbonding(NODE.address).call()
    mine(chain.w3, release - chain.w3.eth.block_number)
    reverts_with(
        "OpenClaimsPending",
        lambda: send(chain.w3, NODE, chain.coord.contract.functions.withdrawStake()),
    )
    # The answer still resolves (anyone may finalise it), and then the stake comes out.
    finalize(chain, req, posted.claim())
    send(chain.w3, NODE, chain.coord.contract.functions.withdrawStake())
    assert chain.coord.contract.functions.getUnbonding(NODE.address).call()[0] == 0


def test_a_deregistered_cheater_is_slashed_from_its_unbonding_stake(chain: Chain) -> None:
    req = optimistic_request(chain)
    posted = post(chain, req, output=[-1])
    claim = challenge(chain, req, posted.claim())
    send(chain.w3, NODE, chain.coord.contract.functions.deregisterNode())
    unbonding_before = chain.coord.contract.functions.getUnbonding(NODE.address).call()[0]
    at_block(chain, posted.proof_deadline + 1)
    finalize(chain, req, claim)
    assert (
        chain.coord.contract.functions.getUnbonding(NODE.address).call()[0]
        == unbonding_before - PARAMS.stake_slash
    )


def test_a_node_slashed_below_the_minimum_stake_is_no_longer_active(chain: Chain) -> None:
    req = optimistic_request(chain)
    posted = post(chain, req, output=[-1])
    claim = challenge(chain, req, posted.claim())
    at_block(chain, posted.proof_deadline + 1)
    assert chain.coord.contract.functions.isActiveNode(NODE.address).call() is True
    finalize(chain, req, claim)
    assert (
        chain.coord.contract.functions.isActiveNode(NODE.address).call() is False
    )  # stake 1 ETH - 0.1


def test_optimistic_answers_need_a_bond_and_the_right_mode(chain: Chain) -> None:
    req = optimistic_request(chain)
    reverts_with("OptimisticAnswerNeedsBond", lambda: chain.fulfill(req, OUTPUT))
    reverts_with("InsufficientBond", lambda: post(chain, req, value=PARAMS.node_bond - 1))
    reverts_with("OutputLengthMismatch", lambda: post(chain, req, output=[1, 2]))
    reverts_with("NotActiveNode", lambda: post(chain, req, sender=OUTSIDER))
    zk = chain.request([3, -4], mode=Mode.ZK, model=ZK_MODEL)
    reverts_with("NotOptimisticRequest", lambda: post(chain, zk))
    # An error answer needs no bond; the optimistic premium goes back to the consumer.
    receipt = chain.fulfill(req, [], err=b"input out of range")
    refunded = chain.coord.contract.events.FeeRefunded().process_receipt(receipt, errors=DISCARD)
    assert [e["args"]["amount"] for e in refunded] == [PARAMS.optimistic_premium]


def test_optimistic_configuration_rules_and_events(chain: Chain) -> None:
    fn = chain.coord.contract.functions
    good = PARAMS.optimistic_config()
    for field, bad in (
        (0, 0),  # no challenge window
        (1, 0),  # no proof window
        (0, PARAMS.unbonding_blocks),  # windows longer than unbonding: stake could escape
        (2, 1_500_000 * PARAMS.proof_gas_price - 1),  # bond below a proof's verification cost
        (6, 5_001),  # challenger share above half: self-challenging would pay
    ):
        config = list(good)
        config[field] = bad
        reverts_with(
            "InvalidOptimisticConfig",
            lambda c=tuple(config): send(chain.w3, OWNER, fn.setOptimisticConfig(c)),
        )
    reverts_with(
        "OwnableUnauthorizedAccount", lambda: send(chain.w3, USER, fn.setOptimisticConfig(good))
    )
    changed = (*good[:2], good[2] * 2, *good[3:])
    receipt = send(chain.w3, OWNER, fn.setOptimisticConfig(changed))
    (ev,) = chain.coord.contract.events.OptimisticConfigSet().process_receipt(
        receipt, errors=DISCARD
    )
    assert ev["args"]["nodeBond"] == good[2] * 2
    assert chain.coord.optimistic_config().node_bond == good[2] * 2


def test_finalize_many_resolves_what_is_due_and_skips_the_rest(chain: Chain) -> None:
    reqs = [optimistic_request(chain, values=[i, i]) for i in range(3)]
    claims = [post(chain, r).claim() for r in reqs]
    early = optimistic_request(chain, values=[9, 9])
    early_claim = post(chain, early).claim()
    at_block(chain, claims[-1].challenge_deadline + 1)
    fn = chain.coord.contract.functions.finalizeMany(
        [r.as_tuple() for r in [*reqs, early]], [c.as_tuple() for c in [*claims, early_claim]]
    )
    assert fn.call({"from": USER.address}) == 3
    send(chain.w3, USER, fn)
    assert [result(chain, r)[0] for r in reqs] == [True, True, True]
    assert result(chain, early)[0] is False
    assert chain.coord.claim_commitment(early.request_id) != b"\0" * 32


def chain_assignee(chain: Chain, req: RequestStruct) -> Any:
    node = chain.coord.contract.functions.assignedNode(req.request_id).call()
    return Account.from_key(key_of(node))


def key_of(address: str) -> str:
    for key in ANVIL_DEV_KEYS:
        if Account.from_key(key).address == address:
            return key
    raise KeyError(address)
