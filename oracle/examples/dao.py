"""`python -m oracle.examples.dao`: a DAO whose proposals are screened by a proved model.

``ScreenedGovernor`` (OpenZeppelin Governor + timelock) computes five features of every new
proposal on chain (share of the treasury moved, share of calls to never-seen targets,
number of calls, the proposer's share of the votes, whether it changes the DAO's own
config), asks the oracle for risk logits in Zk mode (EZKL proof checked on chain), and
refuses to queue or execute a proposal until its screening passed. A proposer pays its
own screening fee (``proposeWithFee``) and must hold 1 % of the votes, so nobody can spend
the DAO's fee budget with spam. The story:

0. an address with no votes tries to propose, and a holder tries without paying: both refused;
1. a whale proposes a small grant (1 % of the treasury) to the DAO's known grants program;
2. a small holder proposes sending 90 % of the treasury to an address the DAO never paid;
3. both are screened: the grant passes, the drain is flagged with a reason in an event;
4. the grant wins its vote, the drain wins too (only its proposer votes: low turnout);
5. the grant is queued and executed; queuing the drain reverts with ``ProposalBlocked``.

The model and its card live in ``models/governance/``. Keys are anvil's public development
keys (``oracle.dev.keys``).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.deploy import ETHER, deploy, send
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.stack import LocalStack
from oracle.errors import OracleError, TransactionError
from oracle.examples import onboard_with_dev_srs
from oracle.models.onboarding import Onboarded
from oracle.paths import ROOT

SCREENING_MODEL = ROOT / "models" / "governance" / "screening_model.onnx"
SCREENING_CALIBRATION = ROOT / "models" / "governance" / "calibration.json"
TOKEN = 10**18
TIMELOCK_DELAY_S = 3600
VOTING_DELAY = 1  # blocks (ScreenedGovernor's GovernorSettings)
VOTING_PERIOD = 20  # blocks
TREASURY = 100 * ETHER
FEE_FUND = 1 * ETHER  # the governor pays rescreening fees from this (proposers pay their own)
SCREENING_CALLBACK_GAS = 500_000  # ScreenedGovernor's CALLBACK_GAS
ZK_MODE = 1
PROPOSAL_THRESHOLD_BPS = 100  # a proposer must hold 1 % of the votes
GRANT = 1 * ETHER
DRAIN = 90 * ETHER
GRANTS_PROGRAM = Web3.to_checksum_address("0x" + Web3.keccak(text="dao grants program").hex()[-40:])
STRANGER = Web3.to_checksum_address("0x" + Web3.keccak(text="never seen before").hex()[-40:])
ZERO = "0x" + "00" * 20
_REVERT = re.compile(r"would revert: (\w+)(\(.*\))?", re.DOTALL)


class Screening(IntEnum):
    """``ScreenedGovernor.Screening``."""

    NONE = 0
    PENDING = 1
    ERRORED = 2
    PASSED = 3
    FLAGGED = 4


@dataclass
class Dao:
    """The deployed DAO: token, timelock (the treasury) and screened governor."""

    w3: Web3
    token: Contract
    timelock: Contract
    governor: Contract

    def propose(
        self,
        proposer: LocalAccount,
        targets: Sequence[str],
        values: Sequence[int],
        description: str,
    ) -> tuple[int, int]:
        """Send a proposal paying its screening fee (the excess comes back); return (proposal
        id, screening request id)."""
        fn = self.governor.functions.proposeWithFee(
            list(targets), list(values), [b""] * len(targets), description
        )
        receipt = send(self.w3, proposer, fn, value=self.screening_fee_with_margin())
        created = self.governor.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        asked = self.governor.events.ScreeningRequested().process_receipt(receipt, errors=DISCARD)
        return int(created[0]["args"]["proposalId"]), int(asked[0]["args"]["requestId"])

    def screening_fee(self) -> int:
        """The Coordinator's fee for one screening at the current block."""
        coordinator = contract(self.w3, "Coordinator", self.governor.functions.coordinator().call())
        model = self.governor.functions.screeningModel().call()
        return int(coordinator.functions.quoteFee(model, ZK_MODE, SCREENING_CALLBACK_GAS).call())

    def screening_fee_with_margin(self) -> int:
        """The fee plus a margin for a base fee that rises before the proposal lands; the
        governor sends the excess back in the same transaction."""
        fee = self.screening_fee()
        return fee + fee // 10

    def args(self, targets: Sequence[str], values: Sequence[int], description: str) -> list[Any]:
        """The (targets, values, calldatas, descriptionHash) that queue and execute take."""
        return [list(targets), list(values), [b""] * len(targets), Web3.keccak(text=description)]

    def screening(self, proposal_id: int) -> tuple[Screening, int, list[float]]:
        status, risk_class, features = self.governor.functions.screening(proposal_id).call()
        return Screening(int(status)), int(risk_class), [int(f) / 1e18 for f in features]

    def wait_screened(self, proposal_id: int, timeout: float = 120.0) -> Screening:
        """Poll until the screening leaves Pending; raise OracleError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.screening(proposal_id)[0]
            if status != Screening.PENDING:
                return status
            time.sleep(0.2)
        raise OracleError(f"no screening callback for proposal {proposal_id} in {timeout:.0f}s")

    def flag_reason(self, proposal_id: int) -> str | None:
        logs = self.governor.events.ProposalFlagged().get_logs(
            from_block=0, argument_filters={"proposalId": proposal_id}
        )
        return str(logs[-1]["args"]["reason"]) if logs else None


def mine(w3: Web3, blocks: int, seconds: int = 0) -> None:
    """Mine ``blocks`` blocks on anvil, first moving its clock ``seconds`` forward."""
    if seconds:
        w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_mine", [blocks])  # type: ignore[arg-type]


def contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def deploy_dao(
    w3: Web3,
    owner: LocalAccount,
    coordinator: str,
    model_id: str,
    holdings: Sequence[tuple[LocalAccount, int]],
) -> Dao:
    """Token (minted to ``holdings``, each self-delegated), timelock holding ``TREASURY``,
    and the governor (its proposer and canceller, funded with ``FEE_FUND`` for rescreening
    fees; a proposer needs ``PROPOSAL_THRESHOLD_BPS`` of the supply and pays its screening)."""
    token = contract(w3, "GovToken", deploy(w3, owner, "GovToken", owner.address)[0])
    tl_address, _ = deploy(w3, owner, "DaoTimelock", TIMELOCK_DELAY_S, [], [ZERO], owner.address)
    timelock = contract(w3, "DaoTimelock", tl_address)
    gov_address, _ = deploy(
        w3,
        owner,
        "ScreenedGovernor",
        token.address,
        timelock.address,
        coordinator,
        bytes.fromhex(model_id.removeprefix("0x")),
        [GRANTS_PROGRAM],
        sum(amount for _, amount in holdings) * PROPOSAL_THRESHOLD_BPS // 10_000,
    )
    governor = contract(w3, "ScreenedGovernor", gov_address)
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        role_id = getattr(timelock.functions, role)().call()
        send(w3, owner, timelock.functions.grantRole(role_id, governor.address))
    admin = timelock.functions.DEFAULT_ADMIN_ROLE().call()
    send(w3, owner, timelock.functions.renounceRole(admin, owner.address))
    for holder, amount in holdings:
        send(w3, owner, token.functions.mint(holder.address, amount))
        send(w3, holder, token.functions.delegate(holder.address))
    _pay(w3, owner, timelock.address, TREASURY)
    _pay(w3, owner, governor.address, FEE_FUND)
    mine(w3, 1)  # the delegations are now in the past: proposals can read them
    return Dao(w3, token, timelock, governor)


def _pay(w3: Web3, sender: LocalAccount, to: str, value: int) -> None:
    tx = {
        "to": Web3.to_checksum_address(to),
        "value": value,
        "gas": 100_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)  # type: ignore[arg-type]
    if w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)["status"] != 1:
        raise OracleError(f"paying {value} wei to {to} failed")


def revert_name(exc: TransactionError) -> str:
    """``ProposalBlocked(...)`` from a TransactionError's message, or the message itself."""
    found = _REVERT.search(str(exc))
    return found.group(1) + (found.group(2) or "") if found else str(exc)


def try_send(w3: Web3, account: LocalAccount, fn: Any) -> str:
    """Send ``fn``: "ok", or the custom error it reverts with."""
    try:
        send(w3, account, fn)
    except TransactionError as exc:
        return revert_name(exc)
    return "ok"


# ---------------------------------------------------------------------- the story
@dataclass
class Outcome:
    title: str
    proposer: str
    proposal_id: int = 0
    screening: Screening = Screening.NONE
    risk_class: int = -1
    features: list[float] = field(default_factory=list)
    reason: str | None = None
    queue: str = "-"
    execute: str = "-"


CLASSES = ("routine", "review", "block")


def run_dao_demo(console: Console, workdir: Path | None) -> bool:
    """Run the story on a fresh local stack; True iff the contracts decided as expected."""
    with tempfile.TemporaryDirectory(prefix="oracle-dao-") as tmp:
        stack = LocalStack(workdir or Path(tmp), block_time=None)
        console.print(
            "[bold]starting local stack[/] (anvil, redis-server, contracts, workers, node)"
        )
        with stack:
            return _drive(stack, console)


def onboard_screening_model(stack: LocalStack, console: Console) -> Onboarded:
    settings = stack.settings()
    coordinator = CoordinatorClient(connect(settings.chain.rpc_url), settings.coordinator_address())
    console.print("onboarding the screening model for Zk mode (EZKL circuit, keys, verifier)")
    done = onboard_with_dev_srs(stack, coordinator, SCREENING_MODEL, SCREENING_CALIBRATION, console)
    console.print(
        f"registered screening model {done.model_id} (scales {done.manifest.input_scale}/"
        f"{done.manifest.output_scale}, 2^{done.manifest.logrows} rows)",
        soft_wrap=True,
    )
    return done


def _drive(stack: LocalStack, console: Console) -> bool:
    settings = stack.settings()
    w3 = connect(settings.chain.rpc_url, timeout_s=60)
    model = onboard_screening_model(stack, console)
    whale = stack.owner
    member: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[2])
    attacker: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[3])
    holdings = [(whale, 600_000 * TOKEN), (member, 350_000 * TOKEN), (attacker, 50_000 * TOKEN)]
    dao = deploy_dao(w3, whale, settings.coordinator_address(), model.model_id, holdings)
    console.print(
        f"DAO deployed: governor {dao.governor.address}, treasury (timelock) "
        f"{dao.timelock.address} holding {TREASURY // ETHER} ETH",
        soft_wrap=True,
    )
    grant = ([GRANTS_PROGRAM], [GRANT], "Grant 1 ETH to the grants program")
    drain = ([STRANGER], [DRAIN], "Move 90 ETH to the new treasury manager")
    routine = Outcome("grant: 1 ETH to the grants program", "whale (60 %)")
    draining = Outcome("drain: 90 ETH to a never-seen address", "small holder (5 %)")
    spammer: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[4])
    spam = dao.governor.functions.proposeWithFee([STRANGER], [0], [b""], "spam")
    no_fee = dao.governor.functions.propose([STRANGER], [0], [b""], "unpaid")
    refused = (try_send(w3, spammer, spam), try_send(w3, attacker, no_fee))
    console.print(
        f"spam refused: no votes -> {_short(refused[0])}; no fee -> {_short(refused[1])}",
        soft_wrap=True,
    )
    if any(result == "ok" for result in refused):
        return False
    routine.proposal_id, _ = dao.propose(whale, *grant)
    draining.proposal_id, _ = dao.propose(attacker, *drain)
    console.print("two proposals made; waiting for their Zk screening callbacks")
    for item in (routine, draining):
        dao.wait_screened(item.proposal_id)
        item.screening, item.risk_class, item.features = dao.screening(item.proposal_id)
        item.reason = dao.flag_reason(item.proposal_id)
    mine(w3, VOTING_DELAY + 1)
    for voter in (whale, member):
        send(w3, voter, dao.governor.functions.castVote(routine.proposal_id, 1))
    send(w3, attacker, dao.governor.functions.castVote(draining.proposal_id, 1))
    mine(w3, VOTING_PERIOD + 1)
    console.print("voting over: both proposals succeeded; queuing them")
    for item, (targets, values, text) in ((routine, grant), (draining, drain)):
        item.queue = try_send(
            w3, whale, dao.governor.functions.queue(*dao.args(targets, values, text))
        )
    mine(w3, 1, TIMELOCK_DELAY_S + 1)
    before = w3.eth.get_balance(GRANTS_PROGRAM)
    for item, (targets, values, text) in ((routine, grant), (draining, drain)):
        item.execute = try_send(
            w3, whale, dao.governor.functions.execute(*dao.args(targets, values, text))
        )
    paid = w3.eth.get_balance(GRANTS_PROGRAM) - before
    _print_table([routine, draining], console)
    ok = (
        routine.screening == Screening.PASSED
        and routine.queue == "ok"
        and routine.execute == "ok"
        and paid == GRANT
        and draining.screening == Screening.FLAGGED
        and draining.reason is not None
        and draining.queue.startswith("ProposalBlocked(")
        and draining.execute != "ok"
        and w3.eth.get_balance(STRANGER) == 0
    )
    treasury = w3.eth.get_balance(dao.timelock.address) / ETHER
    console.print(
        f"dao demo: {'[green]as expected[/]' if ok else '[red]NOT as expected[/]'}; "
        f"treasury now {treasury:.2f} ETH, grants program received {paid / ETHER:.2f} ETH"
    )
    return ok


def _print_table(items: Sequence[Outcome], console: Console) -> None:
    table = Table(title="what the DAO's contracts decided", expand=True)
    widths = {"proposal": 4, "screening": 2, "reason": 5, "queue": 3, "execute": 3}
    for col, ratio in widths.items():
        table.add_column(col, overflow="fold", ratio=ratio)
    for item in items:
        colour = "green" if item.screening == Screening.PASSED else "red"
        cls = CLASSES[item.risk_class] if 0 <= item.risk_class < len(CLASSES) else "?"
        features = " ".join(f"{v:.2f}" for v in item.features)
        table.add_row(
            f"{item.title}\n[dim]by {item.proposer}\nfeatures {features}[/]",
            f"[{colour}]{item.screening.name.lower()} ({cls})[/]",
            item.reason or "-",
            _short(item.queue),
            _short(item.execute),
        )
    console.print(table)


def _short(result: str) -> str:
    """A revert as its error name only (the proposal id it carries is in the first column)."""
    return result.split("(", 1)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stack's files here")
    args = parser.parse_args(argv)
    ok = run_dao_demo(Console(), args.workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
