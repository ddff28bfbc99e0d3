"""RiskLendingMarket end to end on anvil: features on chain, a Zk-proved score, LTV decisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import deploy, send
from oracle.dev.keys import ANVIL_DEV_KEYS, NODE_KEY
from oracle.errors import TransactionError
from oracle.examples.market import (
    AGE_BLOCKS,
    CALM_PRICES,
    COLLATERAL,
    LENDER_DEPOSIT,
    LOAN,
    MAX_SCORE_AGE,
    PRICE,
    RISK_CALIBRATION,
    RISK_MODEL,
    TOKEN,
    TOLERANCE,
    VOLATILE_PRICES,
    WAD,
    Market,
    ScoreRequest,
    ScoreResult,
    mine,
    reference_score,
)
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from tests.support.chain import rpc
from tests.support.contract import register_raw, requested
from tests.support.models import load_script, seed_from
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

OWNER = Account.from_key(ANVIL_DEV_KEYS[0])
LENDER, CAREFUL, RISKY = (Account.from_key(k) for k in ANVIL_DEV_KEYS[2:5])
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def risk_model(stack: Stack, circuit_of: Callable[[Path, Path], Path]) -> onboarding.Onboarded:
    seed_from(circuit_of(RISK_MODEL, RISK_CALIBRATION), Path(stack.settings.store.path))
    done = onboarding.onboard(
        stack.db,
        ArtifactStore(stack.settings.store.path),
        stack.coordinator,
        OWNER,
        RISK_MODEL,
        RISK_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )
    stack.local.serve(done.model_id)  # registered after the node started: declare it
    return done


@pytest.fixture
def market(stack: Stack, risk_model: onboarding.Onboarded) -> Market:
    m = Market.deploy(stack.w3, OWNER, stack.deployment.coordinator, risk_model.model_id)
    m.fund(LENDER, debt=LENDER_DEPOSIT)
    m.deposit(LENDER, LENDER_DEPOSIT)
    return m


def scored(market: Market, req: ScoreRequest, scale: int) -> ScoreResult:
    result = market.wait_score(req, timeout=120)
    assert result.error == "" and result.score is not None, result
    assert abs(result.score - reference_score(req.inputs, scale)) <= TOLERANCE
    return result


def test_loan_limits_follow_the_proved_risk_score(
    stack: Stack,
    risk_model: onboarding.Onboarded,
    market: Market,
    prover: Any,
    running_node: Any,
) -> None:
    scale = risk_model.manifest.input_scale
    assert market.input_scale() == scale
    train = load_script(ROOT / "models" / "risk" / "train.py", "risk_train")
    c = market.contract.functions

    # No score yet: refused with ScoreMissing, whatever the collateral.
    market.push_prices(CALM_PRICES)
    market.fund(CAREFUL, collateral=COLLATERAL)
    market.deposit_collateral(CAREFUL, COLLATERAL)
    missing = market.try_borrow(CAREFUL, TOKEN)
    assert (missing.error, missing.args) == ("ScoreMissing", (CAREFUL.address,))

    # A careful, old account under calm prices: the 75 % tier.
    mine(stack.w3, AGE_BLOCKS)
    req = market.request_score(CAREFUL)
    calm_vol = float(train.volatility_feature(np.array([CALM_PRICES]))[0])
    expected = [calm_vol, 0.0, 1.0, 0.0, 0.0]  # vol, utilisation, age, liquidations, repayments
    assert np.allclose(np.array(req.inputs) / (1 << scale), expected, atol=2 / (1 << scale))
    careful = scored(market, req, scale)
    assert careful.max_ltv_bps == 7500
    score = c.getScore(CAREFUL.address).call()
    assert score[0] == round(careful.score * WAD) and score[3] is True
    limit = COLLATERAL * PRICE // WAD * 3 // 4
    assert c.borrowLimit(CAREFUL.address).call() == limit
    over = market.try_borrow(CAREFUL, limit + 1)
    assert (over.error, over.args) == ("BorrowExceedsLimit", (CAREFUL.address, limit + 1, limit))
    assert market.try_borrow(CAREFUL, limit).ok  # exactly up to the limit
    assert market.debt.functions.balanceOf(CAREFUL.address).call() == limit
    with pytest.raises(TransactionError, match="WithdrawExceedsLimit"):
        send(stack.w3, CAREFUL, c.withdrawCollateral(TOKEN))

    # A new account with a past liquidation, volatile prices, a busy pool: the 0 % tier.
    market.push_prices(VOLATILE_PRICES)
    market.fund(RISKY, collateral=COLLATERAL)
    market.deposit_collateral(RISKY, COLLATERAL)
    market.record_liquidation(RISKY)
    req = market.request_score(RISKY)
    features = np.array(req.inputs) / (1 << scale)
    # Utilisation is time-weighted: the pool has been busy for only a few blocks of the window.
    twap = c.utilisation().call(block_identifier=req.block) / WAD
    assert features[0] == 1.0 and features[1] == pytest.approx(twap, abs=2 / (1 << scale))
    assert 0 < features[1] < limit / LENDER_DEPOSIT / 2
    assert features[3] == pytest.approx(1 / 3, abs=1e-3) and features[2] < 0.05
    risky = scored(market, req, scale)
    assert risky.score > 0.6 and risky.max_ltv_bps == 0
    refused = market.try_borrow(RISKY, LOAN)
    assert (refused.error, refused.args) == ("BorrowExceedsLimit", (RISKY.address, LOAN, 0))
    assert market.debt.functions.balanceOf(RISKY.address).call() == 0

    # The careful borrower repays half; once the score is stale, borrowing again is refused.
    market.repay(CAREFUL, limit // 2)
    assert market.try_borrow(CAREFUL, TOKEN).ok  # still fresh
    scored_at = int(c.getScore(CAREFUL.address).call()[1])
    mine(stack.w3, MAX_SCORE_AGE + 1)
    stale = market.try_borrow(CAREFUL, TOKEN)
    assert (stale.error, stale.args) == (
        "ScoreExpired",
        (CAREFUL.address, scored_at, MAX_SCORE_AGE),
    )
    assert list(c.totals().call()) == [LENDER_DEPOSIT, limit - limit // 2 + TOKEN]


def test_repayments_and_liquidations_feed_the_features(
    stack: Stack, risk_model: onboarding.Onboarded, market: Market
) -> None:
    """On-chain feature bookkeeping without the oracle: counters, clipping, age."""
    c = market.contract.functions
    market.fund(RISKY, collateral=COLLATERAL)
    market.deposit_collateral(RISKY, COLLATERAL)
    deposited_at = int(c.getAccount(RISKY.address).call()[3])
    for _ in range(4):
        market.record_liquidation(RISKY)
    mine(stack.w3, 3 * AGE_BLOCKS)
    f = c.features(RISKY.address).call()
    assert f[2] == WAD and f[3] == WAD  # age and liquidations clipped to 1
    assert c.accountAge(RISKY.address).call() == stack.w3.eth.block_number - deposited_at
    assert tuple(c.getAccount(RISKY.address).call())[5:7] == (4, 0)
    assert c.volatility().call() == 0  # no price history yet
    with pytest.raises(TransactionError, match="NotKeeper"):
        send(stack.w3, RISKY, c.pushPrice(WAD))


# -- attacks on the market, answered by the test itself through a mock verifier -------------
SCORE_SCALE = 13  # the mock model's input and output scales
NODE = Account.from_key(NODE_KEY)
LIQUIDITY = 10_000 * TOKEN
GAS = 400_000  # anvil estimates at the latest block; the market may accrue in the next


@pytest.fixture
def mock_market(stack: Stack) -> Market:
    """A market on a 5-in/1-out model whose 'proofs' a mock verifier accepts: the test plays
    the node and answers with the score it chooses (the real model scores the features)."""
    verifier, _ = deploy(stack.w3, OWNER, "MockVerifier")
    onnx_hash = "0x" + Web3.keccak(text="mock risk model").hex().removeprefix("0x")
    model, _ = register_raw(
        stack.w3,
        stack.coordinator.contract,
        OWNER,
        onnx_hash,
        (5, 1, SCORE_SCALE, SCORE_SCALE),
        verifier,
    )
    stack.local.serve(model)
    m = Market.deploy(stack.w3, OWNER, stack.deployment.coordinator, model)
    m.fund(LENDER, debt=LENDER_DEPOSIT + LIQUIDITY)
    m.deposit(LENDER, LENDER_DEPOSIT)
    m.push_prices((2.00, 2.10, 1.95, 2.10, 1.95, 2.10, 1.95, 2.10))  # vol ~0.7
    return m


def inference_request(stack: Stack, receipt: Any) -> RequestStruct:
    return requested(stack.coordinator, receipt)


def ask(stack: Stack, market: Market, borrower: Any) -> RequestStruct:
    fee = int(market.contract.functions.quoteFee().call())
    receipt = send(stack.w3, borrower, market.contract.functions.requestRiskScore(), value=fee)
    return inference_request(stack, receipt)


def answer(stack: Stack, req: RequestStruct, score: float | None) -> Any:
    """Fulfil as the node: ``score`` (None: an error answer) with a 'proof' the mock accepts."""
    output = [] if score is None else [round(score * (1 << SCORE_SCALE))]
    err = b"bad input" if score is None else b""
    fn = stack.coordinator.contract.functions.fulfill(req.as_tuple(), output, err, b"\x01")
    return send(stack.w3, NODE, fn, gas=1_000_000)


def model_score(features_wad: Sequence[int]) -> float:
    """The shipped risk model (onnxruntime) on the contract's own features."""
    inputs = [(int(f) << SCORE_SCALE) // WAD for f in features_wad]
    return reference_score(inputs, SCORE_SCALE)


@pytest.mark.no_worker
def test_feature_games_no_longer_improve_the_score(stack: Stack, mock_market: Market) -> None:
    """Dust deposited early, ten dust borrow/repay loops and liquidity parked in the scoring
    block used to move a score from 0.63 (0 % LTV) to 0.12 (75 % LTV)."""
    market, w3 = mock_market, stack.w3
    c = market.contract.functions
    # A busy pool: another borrower takes 95 % of the liquidity for a whole window.
    market.fund(CAREFUL, collateral=10 * COLLATERAL)
    market.deposit_collateral(CAREFUL, 10 * COLLATERAL)
    answer(stack, ask(stack, market, CAREFUL), 0.1)
    send(w3, CAREFUL, c.borrow(LENDER_DEPOSIT * 95 // 100), gas=GAS)
    # Game 1: the attacker deposits 1 wei of collateral early, then waits.
    market.fund(RISKY, collateral=COLLATERAL + 1, debt=TOKEN)
    market.deposit_collateral(RISKY, 1)
    mine(w3, AGE_BLOCKS)
    market.deposit_collateral(RISKY, COLLATERAL)
    deposited_at = w3.eth.block_number
    honest = c.features(RISKY.address).call()
    honest_score = model_score(honest)
    assert honest_score > 0.6 and c.maxLtvFor(int(honest_score * WAD)).call() == 0
    # Game 2: ten borrow(1)/repay(1) loops (a first score lets the attacker borrow at all).
    answer(stack, ask(stack, market, RISKY), 0.1)
    for _ in range(10):
        send(w3, RISKY, c.borrow(1), gas=GAS)
        send(w3, RISKY, c.repay(1), gas=GAS)
    # Game 3: park liquidity, ask for the score and take it back, all in one block.
    rpc(w3, "evm_setAutomine", [False])
    try:
        hashes = [
            _send_raw(w3, LENDER, c.deposit(LIQUIDITY)),
            _send_raw(w3, RISKY, c.requestRiskScore(), int(c.quoteFee().call())),
            _send_raw(w3, LENDER, c.withdraw(LIQUIDITY)),
        ]
        rpc(w3, "evm_mine")
    finally:
        rpc(w3, "evm_setAutomine", [True])
    receipts = [w3.eth.get_transaction_receipt(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert len({r["blockNumber"] for r in receipts}) == 1
    (ev,) = market.contract.events.RiskScoreRequested().process_receipt(receipts[1], errors=DISCARD)
    gamed = [(int(v) * WAD) >> SCORE_SCALE for v in ev["args"]["features"]]
    gamed_score = model_score(gamed)
    # The old market: age 1.0, repayments 1.0, utilisation 0.02 -> 0.12 (75 % LTV).
    # Only the real collateral's own age (the dust's 1000 blocks add nothing), no repayment.
    held = int(receipts[1]["blockNumber"]) - deposited_at
    assert gamed[2] == pytest.approx(held * WAD // AGE_BLOCKS, abs=WAD // 1000) and gamed[4] == 0
    assert gamed[1] == pytest.approx(honest[1], rel=0.05)  # utilisation as before
    assert gamed_score >= honest_score - 0.01
    assert c.maxLtvFor(int(gamed_score * WAD)).call() == 0


def _send_raw(w3: Web3, account: Any, fn: Any, value: int = 0) -> Any:
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": value,
            "gas": 1_000_000,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    return w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


@pytest.mark.no_worker
def test_scores_age_from_the_request_and_late_or_stale_answers_are_ignored(
    stack: Stack, mock_market: Market
) -> None:
    """A score used to count from its callback block (a slow answer lived longer than the
    features it scored), a late answer to an older request overwrote a newer score, and a
    liquidation left the old score usable."""
    market, w3 = mock_market, stack.w3
    c = market.contract.functions
    market.fund(CAREFUL, collateral=COLLATERAL)
    market.deposit_collateral(CAREFUL, COLLATERAL)
    old = ask(stack, market, CAREFUL)  # the stack answers within 5 blocks: no mining here
    new = ask(stack, market, CAREFUL)  # supersedes `old`
    score_block = answer(stack, new, 0.1)["blockNumber"]
    score = c.getScore(CAREFUL.address).call()
    assert score[1] == new.requested_at_block  # the request block, not the callback block
    assert score[2] == 7500
    receipt = answer(stack, old, 0.9)  # late, for the older request
    ignored = market.contract.events.StaleRiskScoreIgnored().process_receipt(
        receipt, errors=DISCARD
    )
    assert [e["args"]["requestId"] for e in ignored] == [old.request_id]
    assert c.getScore(CAREFUL.address).call()[2] == 7500  # the old market stored 0 % here
    # Expiry counts from the request block.
    mine(w3, new.requested_at_block + MAX_SCORE_AGE + 1 - w3.eth.block_number)
    assert w3.eth.block_number <= int(score_block) + MAX_SCORE_AGE  # fresh by callback age
    assert market.try_borrow(CAREFUL, TOKEN).error == "ScoreExpired"
    # A liquidation clears the score, and a request made before it cannot bring it back.
    fresh = ask(stack, market, CAREFUL)
    answer(stack, fresh, 0.1)
    assert market.try_borrow(CAREFUL, TOKEN).ok
    pending = ask(stack, market, CAREFUL)
    market.record_liquidation(CAREFUL)
    assert market.try_borrow(CAREFUL, TOKEN).error == "ScoreMissing"
    answer(stack, pending, 0.1)
    assert tuple(c.getScore(CAREFUL.address).call())[3] is False


@pytest.mark.no_worker
def test_refunds_go_to_the_borrower_who_paid(stack: Stack, mock_market: Market) -> None:
    """The Coordinator's refund of an error answer used to be the market owner's to take.
    (The Coordinator refuses a wrong input length at request time, so the node's error answer
    is played here by the test.)"""
    market = mock_market
    c = market.contract.functions
    market.fund(CAREFUL, collateral=COLLATERAL)
    market.deposit_collateral(CAREFUL, COLLATERAL)
    fee = int(c.quoteFee().call())
    receipt = send(stack.w3, CAREFUL, c.requestRiskScore(), value=fee + 123)  # overpays
    req = inference_request(stack, receipt)
    answer(stack, req, None)
    # An error answer stores no score.
    assert tuple(c.getScore(CAREFUL.address).call())[3] is False
    assert c.pendingBorrower(req.request_id).call() == ZERO_ADDRESS
    assert market.try_borrow(CAREFUL, TOKEN).error == "ScoreMissing"
    premium = int(stack.coordinator.contract.functions.feeConfig().call()[1])
    assert c.refundOf(CAREFUL.address).call() == premium + 123
    with pytest.raises(TransactionError, match="NothingToWithdraw"):
        send(stack.w3, OWNER, c.withdrawRefund())
    before = stack.w3.eth.get_balance(CAREFUL.address)
    receipt = market.withdraw_refund(CAREFUL)
    spent = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert stack.w3.eth.get_balance(CAREFUL.address) == before + premium + 123 - spent
    assert c.refundOf(CAREFUL.address).call() == 0
