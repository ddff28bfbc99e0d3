"""Random sequences of optimistic-mode moves against the real Coordinator (anvil): requests,
honest and wrong posts, challenges, proofs, finalisations (one by one and in batches),
cancellations, deregistration, stake and fee withdrawals, and blocks passing, in any order,
including moves the contract must refuse. After every step every wei is accounted for:

    Coordinator balance == owed balances + active and unbonding stakes
                           + fees of open requests + fees and bonds of open answers

and every open answer's state on chain is the model's (claim commitment present exactly for
the answers the model holds open). A refused move must change nothing (the next check would
see it). Seeds are fixed so a failure replays.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_account import Account
from web3.logs import DISCARD

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import ETHER, CoordinatorParams, register_node, send, serve_model
from oracle.chain.optimistic import ClaimStruct
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.errors import TransactionError
from oracle.types import Mode
from tests.support.chain import mine
from tests.support.contract import NODE, OUTSIDER, OWNER, USER, ZK_MODEL, Chain

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PARAMS = CoordinatorParams()
NODE2 = Account.from_key(ANVIL_DEV_KEYS[4])
NODES = {NODE.address: NODE, NODE2.address: NODE2}
STEPS = 70


@dataclass
class Model:
    """What the test believes is open on chain."""

    requests: dict[int, RequestStruct] = field(default_factory=dict)
    claims: dict[int, tuple[RequestStruct, ClaimStruct, bool]] = field(default_factory=dict)
    # request id -> (request, claim, honest)
    moves: dict[str, int] = field(default_factory=dict)

    def count(self, move: str) -> None:
        self.moves[move] = self.moves.get(move, 0) + 1


def held_wei(chain: Chain, model: Model) -> int:
    fn = chain.coord.contract.functions
    owed = sum(
        int(fn.nodeBalance(a).call())
        for a in (
            NODE.address,
            NODE2.address,
            USER.address,
            OUTSIDER.address,
            chain.consumer.address,
        )
    )
    stakes = sum(int(fn.getNode(a).call()[0]) + int(fn.getUnbonding(a).call()[0]) for a in NODES)
    open_fees = sum(r.fee for r in model.requests.values())
    open_claims = sum(r.fee + c.bond + c.challenger_bond for r, c, _ in model.claims.values())
    return owed + stakes + open_fees + open_claims


def check(chain: Chain, model: Model) -> None:
    assert chain.w3.eth.get_balance(chain.coord.address) == held_wei(chain, model)
    for request_id in model.claims:
        assert chain.coord.claim_commitment(request_id) != bytes(32)
    for request_id in model.requests:
        assert chain.coord.commitment(request_id) != bytes(32)
        assert chain.coord.claim_commitment(request_id) == bytes(32)


def attempt(fn: Any) -> Any:
    """Run a move; a refused one (a revert the contract chose) returns None."""
    try:
        return fn()
    except TransactionError as exc:
        assert "would revert" in str(exc), str(exc)  # refused in simulation, nothing sent
        return None


def step(chain: Chain, model: Model, rnd: random.Random) -> None:
    fn = chain.coord.contract.functions
    move = rnd.choice(
        [
            "request",
            "request",
            "post",
            "post",
            "fulfill",
            "challenge",
            "prove",
            "finalize",
            "finalize_many",
            "mine",
            "mine",
            "cancel",
            "deregister",
            "withdraw_stake",
            "withdraw_fees",
            "register",
        ]
    )
    model.count(move)
    if move == "request":
        mode = rnd.choice([Mode.OPTIMISTIC, Mode.OPTIMISTIC, Mode.ZK])
        req = attempt(
            lambda: chain.request(
                [rnd.randint(-9, 9), rnd.randint(-9, 9)], mode=mode, model=ZK_MODEL
            )
        )
        if req is not None:
            model.requests[req.request_id] = req
    elif move == "post" and model.requests:
        # Mostly the newest request (older ones have often expired: 5 blocks here).
        newest = max(model.requests)
        req = model.requests[newest if rnd.random() < 0.7 else rnd.choice(list(model.requests))]
        assigned = fn.assignedNode(req.request_id).call()
        node = NODES.get(assigned) or rnd.choice(list(NODES.values()))
        honest = rnd.random() < 0.5
        output = [1] if honest else [666]
        receipt = attempt(
            lambda: send(
                chain.w3, node, fn.postOptimistic(req.as_tuple(), output), value=PARAMS.node_bond
            )
        )
        if receipt is not None:
            (posted,) = chain.coord.posted_in_receipt(receipt)
            del model.requests[req.request_id]
            model.claims[req.request_id] = (req, posted.claim(), honest)
    elif move == "fulfill" and model.requests:
        # Zk requests (new or re-opened) with a proof; optimistic ones only with an error.
        req = rnd.choice(list(model.requests.values()))
        node = NODES.get(fn.assignedNode(req.request_id).call()) or NODE
        output, err = ([2], b"") if req.mode == Mode.ZK else ([], b"bad input")
        if attempt(lambda: chain.fulfill(req, output, err=err, proof=b"p", sender=node)):
            del model.requests[req.request_id]
    elif move == "challenge" and model.claims:
        request_id = rnd.choice(list(model.claims))
        req, claim, honest = model.claims[request_id]
        who = rnd.choice([OUTSIDER, USER, NODES[claim.node]])  # self-challenge included
        if attempt(
            lambda: send(
                chain.w3,
                who,
                fn.challenge(req.as_tuple(), claim.as_tuple()),
                value=PARAMS.challenger_bond,
            )
        ):
            model.claims[request_id] = (
                req,
                replace(claim, challenger=who.address, challenger_bond=PARAMS.challenger_bond),
                honest,
            )
    elif move == "prove" and model.claims:
        request_id = rnd.choice(list(model.claims))
        req, claim, honest = model.claims[request_id]
        send(
            chain.w3, OWNER, chain.verifier.functions.setAnswer(honest)
        )  # a wrong output has no proof
        if attempt(
            lambda: send(
                chain.w3, OUTSIDER, fn.proveOptimistic(req.as_tuple(), claim.as_tuple(), b"p")
            )
        ):
            del model.claims[request_id]
        send(chain.w3, OWNER, chain.verifier.functions.setAnswer(True))
    elif move == "finalize" and model.claims:
        head = chain.w3.eth.block_number
        due = [i for i, (_, c, _) in model.claims.items() if head > deadline(c)]
        pool = due if due and rnd.random() < 0.7 else list(model.claims)
        request_id = rnd.choice(pool)
        req, claim, _ = model.claims[request_id]
        receipt = attempt(
            lambda: send(chain.w3, USER, fn.finalize(req.as_tuple(), claim.as_tuple()))
        )
        if receipt is not None:
            resolve(chain, model, request_id, receipt)
    elif move == "finalize_many" and model.claims:
        picked = rnd.sample(list(model.claims), min(3, len(model.claims)))
        reqs = [model.claims[i][0].as_tuple() for i in picked]
        claims = [model.claims[i][1].as_tuple() for i in picked]
        receipt = send(chain.w3, USER, fn.finalizeMany(reqs, claims))
        for request_id in picked:
            if chain.coord.claim_commitment(request_id) == bytes(32):
                resolve(chain, model, request_id, receipt)
    elif move == "mine":
        mine(chain.w3, rnd.choice([1, 2, 11, 21]))
    elif move == "cancel" and model.requests:
        req = rnd.choice(list(model.requests.values()))
        if attempt(lambda: send(chain.w3, USER, chain.consumer.functions.cancel(req.as_tuple()))):
            del model.requests[req.request_id]
    elif move == "deregister":
        attempt(lambda: send(chain.w3, rnd.choice(list(NODES.values())), fn.deregisterNode()))
    elif move == "withdraw_stake":
        attempt(lambda: send(chain.w3, rnd.choice(list(NODES.values())), fn.withdrawStake()))
    elif move == "withdraw_fees":
        who = rnd.choice([*NODES.values(), OUTSIDER])
        attempt(lambda: send(chain.w3, who, fn.withdrawFees(who.address)))
    elif move == "register":
        node = rnd.choice(list(NODES.values()))
        if attempt(lambda: send(chain.w3, node, fn.registerNode(), value=ETHER)):
            attempt(lambda: serve_model(chain.w3, node, chain.coord.address, ZK_MODEL))


def deadline(claim: ClaimStruct) -> int:
    return claim.challenge_deadline if claim.challenger is None else claim.proof_deadline


def resolve(chain: Chain, model: Model, request_id: int, receipt: Any) -> None:
    """A claim was resolved: delivered, or slashed and re-opened in Zk."""
    req, claim, _honest = model.claims.pop(request_id)
    reopened = chain.coord.contract.events.RequestReopened().process_receipt(
        receipt, errors=DISCARD
    )
    mine_ids = [int(e["args"]["requestId"]) for e in reopened]
    if request_id in mine_ids:
        assert claim.challenger is not None  # only an unproven challenged answer is slashed
        block = next(
            int(e["blockNumber"]) for e in reopened if int(e["args"]["requestId"]) == request_id
        )
        model.requests[request_id] = replace(req, mode=int(Mode.ZK), requested_at_block=block)
        model.count("slashed")
    else:
        model.count("delivered")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_moves_keep_every_wei_accounted_for(chain: Chain, seed: int) -> None:
    register_node(chain.w3, NODE2, chain.coord.address, ETHER)
    serve_model(chain.w3, NODE2, chain.coord.address, ZK_MODEL)
    rnd = random.Random(seed)
    model = Model()
    check(chain, model)
    for _ in range(STEPS):
        step(chain, model, rnd)
        check(chain, model)
    # Something happened in each run (a walk that only mines proves nothing).
    # Then every open answer runs out its time and is resolved in one batch: none may be stuck.
    if model.claims:
        mine(
            chain.w3,
            max(deadline(c) for _, c, _ in model.claims.values()) - chain.w3.eth.block_number + 1,
        )
        ids = list(model.claims)
        fn = chain.coord.contract.functions.finalizeMany(
            [model.claims[i][0].as_tuple() for i in ids],
            [model.claims[i][1].as_tuple() for i in ids],
        )
        receipt = send(chain.w3, USER, fn)
        for request_id in ids:
            resolve(chain, model, request_id, receipt)
        check(chain, model)
    assert not model.claims
    # The walk got somewhere: answers were posted and resolved (a walk that only mines, or
    # whose every move was refused, proves nothing).
    resolved = model.moves.get("delivered", 0) + model.moves.get("slashed", 0)
    assert model.moves.get("post", 0) and resolved, model.moves
