"""RiskLendingMarket end to end on anvil: features on chain, a Zk-proved score, LTV decisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account import Account

from oracle.chain.deploy import send
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.errors import TransactionError
from oracle.examples.defi import (
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
from tests.support.models import EXAMPLE_CALIBRATION, load_script, onnx_variant
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

OWNER = Account.from_key(ANVIL_DEV_KEYS[0])
LENDER, CAREFUL, RISKY = (Account.from_key(k) for k in ANVIL_DEV_KEYS[2:5])
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def prover(stack: Stack) -> Iterator[Any]:
    proc = stack.start_prover()
    yield proc
    proc.stop()


@pytest.fixture
def risk_model(stack: Stack) -> onboarding.Onboarded:
    return onboarding.onboard(
        stack.db,
        ArtifactStore(stack.settings.store.path),
        stack.coordinator,
        OWNER,
        RISK_MODEL,
        RISK_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )


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
    assert features[0] == 1.0 and features[1] == pytest.approx(limit / LENDER_DEPOSIT, abs=1e-3)
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
    first = int(c.getAccount(RISKY.address).call()[2])
    for _ in range(4):
        market.record_liquidation(RISKY)
    mine(stack.w3, 3 * AGE_BLOCKS)
    f = c.features(RISKY.address).call()
    assert f[2] == WAD and f[3] == WAD  # age and liquidations clipped to 1
    assert tuple(c.getAccount(RISKY.address).call())[2:4] == (first, 4)
    assert c.volatility().call() == 0  # no price history yet
    with pytest.raises(TransactionError, match="NotKeeper"):
        send(stack.w3, RISKY, c.pushPrice(WAD))


def test_a_market_on_a_model_of_the_wrong_shape_cannot_ask_and_pays_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    """A market wired to a 4-input model sends 5 features: the Coordinator refuses the request
    itself (InputLengthMismatch), so no fee leaves the borrower and nothing is stored. (An
    error answer's refund is covered by test_zk's bad-input test.)"""
    wrong = onboarding.onboard(
        stack.db,
        ArtifactStore(stack.settings.store.path),
        stack.coordinator,
        OWNER,
        onnx_variant(tmp_path / "four_inputs.onnx", "defi-error"),
        EXAMPLE_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )
    market = Market.deploy(stack.w3, OWNER, stack.deployment.coordinator, wrong.model_id)
    market.fund(CAREFUL, collateral=COLLATERAL)
    market.deposit_collateral(CAREFUL, COLLATERAL)
    before = stack.w3.eth.get_balance(CAREFUL.address)
    with pytest.raises(TransactionError, match="InputLengthMismatch"):
        market.request_score(CAREFUL)
    assert stack.w3.eth.get_balance(CAREFUL.address) == before  # refused before sending
    c = market.contract.functions
    assert tuple(c.getScore(CAREFUL.address).call())[3] is False  # nothing stored
    assert market.try_borrow(CAREFUL, TOKEN).error == "ScoreMissing"
