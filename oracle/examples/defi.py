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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, connect, revert_from_exception
from oracle.chain.deploy import deploy, send
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.stack import LocalStack
from oracle.errors import OracleError, TransactionError
from oracle.examples import onboard_with_dev_srs
from oracle.models.onboarding import Onboarded
from oracle.paths import ROOT

RISK_MODEL = ROOT / "models" / "risk" / "risk_model.onnx"
RISK_CALIBRATION = ROOT / "models" / "risk" / "calibration.json"
TOLERANCE = 0.002  # |circuit - onnxruntime| on the score (models/risk/MODEL_CARD.md)
WAD = 10**18
TOKEN = 10**18
PRICE = 2 * TOKEN  # debt tokens per collateral token
MAX_SCORE_AGE = 50  # blocks
AGE_BLOCKS = 1000  # blocks for the age feature to saturate
COLLATERAL = 100 * TOKEN
LENDER_DEPOSIT = 200 * TOKEN
LOAN = 140 * TOKEN  # 70 % of the collateral's value: only the 75 % tier allows it
SMALL_LOAN = 10 * TOKEN
GAS_MARGIN = 100_000  # see Market._send
MIN_LOAN_BLOCKS = 10  # RiskLendingMarket.MIN_LOAN_BLOCKS: a repayment counts after this long
CALM_PRICES = (2.000, 2.010, 2.004, 2.012, 2.006, 2.000, 2.008, 2.002)
VOLATILE_PRICES = (2.00, 2.40, 1.90, 2.30, 1.70, 2.20, 1.60, 2.10)


@dataclass(frozen=True)
class ScoreRequest:
    request_id: int
    inputs: list[int]  # the fixed-point features the contract sent
    block: int


@dataclass(frozen=True)
class ScoreResult:
    request_id: int
    score: float | None  # None when the oracle answered with an error
    max_ltv_bps: int
    error: str


@dataclass(frozen=True)
class BorrowOutcome:
    ok: bool
    error: str = ""  # the custom error's name, "" when ok
    args: tuple[Any, ...] = ()  # the custom error's arguments

    def describe(self) -> str:
        if self.ok:
            return "borrowed"
        if self.error == "BorrowExceedsLimit":
            return f"BorrowExceedsLimit: limit {self.args[2] / TOKEN:g}"
        if self.error == "ScoreExpired":
            return f"ScoreExpired: scored at {self.args[1]}, max age {self.args[2]}"
        return self.error


def reference_score(inputs: Sequence[int], input_scale: int, onnx_path: Path = RISK_MODEL) -> float:
    """What onnxruntime says for the exact on-chain fixed-point features."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = (np.array(inputs, dtype=np.float64) / (1 << input_scale)).astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x.reshape(1, -1)})[0]
    return float(np.asarray(out).reshape(-1)[0])


def mine(w3: Web3, blocks: int) -> None:
    """Mine ``blocks`` empty blocks at once (anvil)."""
    w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


class Market:
    """A deployed RiskLendingMarket with its two DemoTokens, driven from Python."""

    def __init__(self, w3: Web3, owner: LocalAccount, market: Contract, tokens: Sequence[Contract]):
        self.w3 = w3
        self.owner = owner
        self.contract = market
        self.collateral, self.debt = tokens

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        owner: LocalAccount,
        coordinator: str,
        model_id: str,
        max_score_age: int = MAX_SCORE_AGE,
    ) -> Market:
        tokens = []
        for name, symbol in (("Demo Collateral", "dCOL"), ("Demo Dollar", "dUSD")):
            address, _ = deploy(w3, owner, "DemoToken", name, symbol)
            tokens.append(_contract(w3, address, "DemoToken"))
        address, _ = deploy(
            w3,
            owner,
            "RiskLendingMarket",
            coordinator,
            tokens[0].address,
            tokens[1].address,
            bytes.fromhex(model_id.removeprefix("0x")),
            PRICE,
            max_score_age,
        )
        return cls(w3, owner, _contract(w3, address, "RiskLendingMarket"), tokens)

    def _send(self, account: LocalAccount, fn: Any, value: int = 0) -> Any:
        # anvil estimates gas at the latest block; in the next one the market may first have to
        # bring its utilisation sum and checkpoints up to date (a few more storage writes).
        try:
            gas: int | None = int(fn.estimate_gas({"from": account.address, "value": value}))
        except (Web3Exception, ValueError):
            gas = None  # it would revert: let send simulate it and report the custom error
        return send(
            self.w3, account, fn, value=value, gas=None if gas is None else gas + GAS_MARGIN
        )

    def fund(self, account: LocalAccount, collateral: int = 0, debt: int = 0) -> None:
        """Mint tokens to ``account`` and approve the market to pull them."""
        for token, amount in ((self.collateral, collateral), (self.debt, debt)):
            if amount:
                self._send(self.owner, token.functions.mint(account.address, amount))
            self._send(account, token.functions.approve(self.contract.address, 2**256 - 1))

    def push_prices(self, prices: Sequence[float]) -> None:
        for p in prices:
            self._send(self.owner, self.contract.functions.pushPrice(round(p * WAD)))

    def deposit(self, lender: LocalAccount, amount: int) -> None:
        self._send(lender, self.contract.functions.deposit(amount))

    def deposit_collateral(self, borrower: LocalAccount, amount: int) -> None:
        self._send(borrower, self.contract.functions.depositCollateral(amount))

    def repay(self, borrower: LocalAccount, amount: int) -> None:
        self._send(borrower, self.contract.functions.repay(amount))

    def withdraw_refund(self, borrower: LocalAccount) -> Any:
        """Take out what the market owes ``borrower`` (overpaid fees, error-answer refunds)."""
        return self._send(borrower, self.contract.functions.withdrawRefund())

    def record_liquidation(self, borrower: LocalAccount) -> None:
        self._send(self.owner, self.contract.functions.recordLiquidation(borrower.address))

    def request_score(self, borrower: LocalAccount) -> ScoreRequest:
        fee = int(self.contract.functions.quoteFee().call())
        receipt = self._send(borrower, self.contract.functions.requestRiskScore(), value=fee)
        ev = self.contract.events.RiskScoreRequested().process_receipt(receipt, errors=DISCARD)
        args = ev[0]["args"]
        return ScoreRequest(
            int(args["requestId"]), [int(v) for v in args["features"]], int(receipt.blockNumber)
        )

    def wait_score(self, req: ScoreRequest, timeout: float = 120.0) -> ScoreResult:
        """Poll the market's events until the oracle's callback for ``req`` arrived."""
        deadline = time.monotonic() + timeout
        scored, failed = self.contract.events.RiskScored(), self.contract.events.RiskScoreFailed()
        filters = {"requestId": req.request_id}
        while time.monotonic() < deadline:
            for log in scored.get_logs(from_block=req.block, argument_filters=filters):
                a = log["args"]
                return ScoreResult(
                    req.request_id, int(a["scoreWad"]) / WAD, int(a["maxLtvBps"]), ""
                )
            for log in failed.get_logs(from_block=req.block, argument_filters=filters):
                reason = bytes(log["args"]["reason"]).decode(errors="replace")
                return ScoreResult(req.request_id, None, 0, reason)
            time.sleep(0.1)
        raise OracleError(f"no risk score callback for request {req.request_id} in {timeout}s")

    def try_borrow(self, borrower: LocalAccount, amount: int) -> BorrowOutcome:
        """Borrow; a revert comes back as the custom error's name and arguments."""
        try:
            self._send(borrower, self.contract.functions.borrow(amount))
        except TransactionError as exc:
            cause = exc.__cause__
            revert = revert_from_exception(cause) if isinstance(cause, Exception) else None
            if revert is None:
                raise
            args = tuple(
                Web3.to_checksum_address(a) if isinstance(a, str) and Web3.is_address(a) else a
                for a in revert.error_args
            )
            return BorrowOutcome(False, revert.name, args)
        return BorrowOutcome(True)

    def input_scale(self) -> int:
        coordinator = self.w3.eth.contract(
            address=self.contract.functions.coordinator().call(),
            abi=load_artifact("Coordinator").abi,
        )
        model = coordinator.functions.getModel(self.contract.functions.modelId().call()).call()
        return int(model[4])


def _contract(w3: Web3, address: str, name: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


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
