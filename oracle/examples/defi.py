"""`python -m oracle.examples.defi`: a lending market whose loan limits come from a proved model.

``RiskLendingMarket`` computes five features of a borrower on chain (collateral price
volatility, pool utilisation, account age, past liquidations, past repayments), asks the
oracle for a risk score in Zk mode (EZKL proof checked on chain), and caps each borrower's
loan-to-value by the score's tier. The story:

1. a lender funds the pool; calm prices are pushed; a careful borrower deposits collateral,
   lets the account age, and repays two small loans, each held ``MIN_LOAN_BLOCKS`` blocks
   (the market counts no dust or same-block loans, ages collateral, not a first deposit,
   and averages utilisation over past blocks, so none of this can be faked in one block);
2. the careful borrower is scored and borrows ``LOAN``;
3. prices turn volatile; a new borrower with a past liquidation is scored and asks for the
   same ``LOAN``: the contract refuses (``BorrowExceedsLimit``);
4. an account without a score is refused (``ScoreMissing``), and once the careful
   borrower's score is older than the market's limit, so is it (``ScoreExpired``).

The model and its card live in ``models/risk/``. Keys are anvil's public development keys.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from oracle.chain.client import CoordinatorClient, connect
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.stack import LocalStack
from oracle.examples import onboard_with_dev_srs
from oracle.examples.market import (
    AGE_BLOCKS,
    CALM_PRICES,
    COLLATERAL,
    LENDER_DEPOSIT,
    LOAN,
    MAX_SCORE_AGE,
    MIN_LOAN_BLOCKS,
    PRICE,
    RISK_CALIBRATION,
    RISK_MODEL,
    SMALL_LOAN,
    TOKEN,
    TOLERANCE,
    VOLATILE_PRICES,
    WAD,
    BorrowOutcome,
    Market,
    ScoreRequest,
    ScoreResult,
    mine,
    reference_score,
)
from oracle.models.onboarding import Onboarded


def onboard_risk_model(
    stack: LocalStack, coordinator: CoordinatorClient, console: Console
) -> Onboarded:
    done = onboard_with_dev_srs(stack, coordinator, RISK_MODEL, RISK_CALIBRATION, console)
    m = done.manifest
    console.print(
        f"registered risk model {done.model_id} (scales {m.input_scale}/{m.output_scale}, "
        f"2^{m.logrows} rows, verifier {done.verifier})",
        soft_wrap=True,
    )
    return done


@dataclass
class Row:
    who: str
    features: list[float] | None
    request: ScoreRequest | None
    result: ScoreResult | None
    reference: float | None
    amount: int
    outcome: BorrowOutcome
    expected: str  # "" = success, else the custom error name


def run_defi_demo(console: Console, workdir: Path | None) -> bool:
    """Run the lending story on a local stack; True iff every expected outcome happened."""
    with tempfile.TemporaryDirectory(prefix="oracle-defi-") as tmp:
        stack = LocalStack(workdir or Path(tmp), block_time=None)
        console.print("[bold]starting local stack[/] (anvil, redis-server, contracts, workers)")
        with stack:
            return _story(stack, console)


def _story(stack: LocalStack, console: Console) -> bool:
    settings = stack.settings()
    w3 = connect(settings.chain.rpc_url)
    coordinator = CoordinatorClient(w3, settings.coordinator_address())
    console.print("onboarding the risk model for Zk mode (EZKL circuit, keys, verifier)")
    model = onboard_risk_model(stack, coordinator, console)
    lender, careful, risky = (Account.from_key(k) for k in ANVIL_DEV_KEYS[2:5])
    market = Market.deploy(w3, stack.owner, coordinator.address, model.model_id)
    console.print(f"deployed RiskLendingMarket at {market.contract.address} (+ dCOL, dUSD)")
    scale = model.manifest.input_scale
    market.fund(lender, debt=LENDER_DEPOSIT)
    market.deposit(lender, LENDER_DEPOSIT)
    market.push_prices(CALM_PRICES)
    market.fund(careful, collateral=COLLATERAL)
    market.deposit_collateral(careful, COLLATERAL)
    mine(w3, AGE_BLOCKS)
    console.print(f"careful borrower: {AGE_BLOCKS} blocks old; repays two small loans")
    first = market.wait_score(market.request_score(careful))
    if first.score is None:
        console.print(f"[bold red]the first score failed: {first.error}[/]")
        return False
    for _ in range(2):
        if not (loan := market.try_borrow(careful, SMALL_LOAN)).ok:
            console.print(f"[bold red]small loan refused: {loan.describe()}[/]")
            return False
        mine(w3, MIN_LOAN_BLOCKS)
        market.repay(careful, SMALL_LOAN)
    console.print(
        f"  first score {first.score:.4f} ({first.max_ltv_bps // 100}% LTV); "
        "2 small loans borrowed and repaid; asking again (Zk)"
    )
    rows = [_scored_borrow(market, careful, "careful", scale, "")]
    console.print("prices turn volatile; a new account with a past liquidation arrives")
    market.push_prices(VOLATILE_PRICES)
    market.fund(risky, collateral=COLLATERAL)
    market.deposit_collateral(risky, COLLATERAL)
    market.record_liquidation(risky)
    rows.append(_scored_borrow(market, risky, "risky", scale, "BorrowExceedsLimit"))
    rows.append(
        Row(
            "unscored",
            None,
            None,
            None,
            None,
            LOAN,
            market.try_borrow(lender, LOAN),
            "ScoreMissing",
        )
    )
    mine(w3, MAX_SCORE_AGE + 1)
    careful_score = rows[0].result
    rows.append(
        Row(
            "careful, stale",
            rows[0].features,
            rows[0].request,
            careful_score,
            rows[0].reference,
            SMALL_LOAN,
            market.try_borrow(careful, SMALL_LOAN),
            "ScoreExpired",
        )
    )
    _print_table(rows, console)
    ok = all(_row_ok(r) for r in rows)
    console.print(
        "[bold green]defi demo: every decision as expected[/]"
        if ok
        else "[bold red]defi demo: some decision was not the expected one[/]"
    )
    return ok


def _scored_borrow(
    market: Market, borrower: LocalAccount, who: str, scale: int, expected: str
) -> Row:
    req = market.request_score(borrower)
    result = market.wait_score(req)
    ref = reference_score(req.inputs, scale)
    feats = [v / (1 << scale) for v in req.inputs]
    return Row(who, feats, req, result, ref, LOAN, market.try_borrow(borrower, LOAN), expected)


def _row_ok(row: Row) -> bool:
    if row.outcome.error != row.expected:
        return False
    if row.result is None:
        return True
    return (
        row.result.score is not None
        and row.reference is not None
        and abs(row.result.score - row.reference) <= TOLERANCE
    )


def _print_table(rows: Sequence[Row], console: Console) -> None:
    console.print(
        f"each borrower holds {COLLATERAL // TOKEN} dCOL worth {COLLATERAL * PRICE // WAD // TOKEN}"
        " dUSD; features are the contract's own (clipped to [0, 1]); score = circuit output"
        " delivered with its proof, onnx = onnxruntime on the same input; amounts in dUSD",
        highlight=False,
    )
    table = Table(title=f"RiskLendingMarket decisions (collateral {COLLATERAL // TOKEN} dCOL each)")
    for col in ("borrower", "vol util age liq rep", "score", "onnx", "LTV", "borrow", "decision"):
        table.add_column(
            col, justify="right" if col in ("score", "onnx", "LTV", "borrow") else "left"
        )
    for r in rows:
        feats = " ".join(f"{v:.2f}" for v in r.features) if r.features else "-"
        score = f"{r.result.score:.4f}" if r.result and r.result.score is not None else "-"
        ref = f"{r.reference:.4f}" if r.reference is not None else "-"
        ltv = f"{r.result.max_ltv_bps / 100:.0f}%" if r.result else "-"
        decision = f"[{'green' if r.outcome.ok else 'red'}]{r.outcome.describe()}[/]"
        mark = "" if _row_ok(r) else " [bold red](unexpected)[/]"
        table.add_row(r.who, feats, score, ref, ltv, f"{r.amount // TOKEN}", decision + mark)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=None, help="state dir (default: temp)")
    args = parser.parse_args(argv)
    ok = run_defi_demo(Console(), args.workdir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
