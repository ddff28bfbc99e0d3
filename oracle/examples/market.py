"""The lending market's contract, seen from Python: deploy it, fund accounts, push prices,
ask for a risk score and read it back, try a borrow. Used by the ``make demo-defi`` story
(:mod:`oracle.examples.defi`) and by the tests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import Web3Exception
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import revert_from_exception
from oracle.chain.deploy import deploy, send
from oracle.errors import OracleError, TransactionError
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
