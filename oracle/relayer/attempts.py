"""The attempt builder: what an answer transaction says, what it offers to pay, and the
one place where a transaction is built, signed and hashed.

It guarantees that the call (``fulfill``; in Optimistic mode ``postOptimistic`` with its bond,
then ``finalize`` or ``proveOptimistic``) is a pure function of the request row (so a
replacement carries exactly the same answer and value), that fees follow EIP-1559 from the
head block it is given, that a replacement outbids the attempt it replaces by
``bump_factor``, and that every transaction the relayer sends is a type-2 transaction signed
by :meth:`sign`.

It reads nothing from the database and sends nothing: choosing the nonce, saving and
broadcasting is the :class:`~oracle.relayer.broadcaster.Broadcaster`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from oracle.chain.batch import BatchAnswer, batch_calldata
from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.chain.optimistic import ClaimStruct
from oracle.db import InferenceRequest, Transaction
from oracle.settings import Settings
from oracle.types import Mode

MAX_ERR_BYTES = 256
FILLER_GAS = 21_000  # a 0-value transfer to ourselves, to use up a nonce


class Head:
    """The chain head of one tick, read from the node at most once, and only when a part
    needs it (an idle tick costs no RPC)."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._block: Any = None

    def block(self) -> Any:
        if self._block is None:
            self._block = self._w3.eth.get_block("latest")
        return self._block

    @property
    def number(self) -> int:
        return int(self.block()["number"])

    @property
    def hash(self) -> bytes:
        return bytes(self.block()["hash"])

    @property
    def base_fee(self) -> int:
        return int(self.block().get("baseFeePerGas", 0) or 0)


@dataclass(frozen=True)
class Fees:
    max_fee: int
    priority: int


@dataclass(frozen=True)
class SignedAttempt:
    """A signed type-2 transaction and what it was built from."""

    nonce: int
    to: str
    gas_limit: int
    fees: Fees
    tx_hash: str
    raw: bytes
    value: int = 0


@dataclass(frozen=True)
class AnswerCall:
    """The Coordinator call that moves a request on, and the wei it carries."""

    function: str  # fulfill, fulfillBatch, postOptimistic, finalize or proveOptimistic
    data: HexStr
    value: int = 0


def request_struct(row: InferenceRequest) -> RequestStruct:
    """The request as committed on chain (``block_number``: the block it was last opened in)."""
    return RequestStruct(
        request_id=row.request_id,
        model_id=row.model_id,
        consumer=row.consumer,
        mode=row.mode,
        callback_gas_limit=row.callback_gas_limit,
        requested_at_block=row.block_number,
        fee=int(row.fee),
        input=tuple(int(v) for v in row.input),
    )


def claim_struct(row: InferenceRequest) -> ClaimStruct:
    """Our posted optimistic answer as the Coordinator committed it."""
    if row.claim_node is None or row.challenge_deadline is None or row.proof_deadline is None:
        raise ValueError(f"request row {row.id} has no posted answer")
    return ClaimStruct(
        output=tuple(int(v) for v in row.output or []),
        node=row.claim_node,
        bond=int(row.claim_bond or 0),
        challenge_deadline=row.challenge_deadline,
        proof_deadline=row.proof_deadline,
        challenger=row.challenger,
        challenger_bond=int(row.challenger_bond or 0),
    )


def is_posting(row: InferenceRequest) -> bool:
    """An Optimistic request with an output and no answer of ours posted yet."""
    return (
        row.mode == Mode.OPTIMISTIC
        and row.claim_node is None
        and not row.error
        and bool(row.output)
    )


def answer_call(coordinator: CoordinatorClient, row: InferenceRequest, bond: int) -> AnswerCall:
    """The call that moves ``row`` on; a pure function of the row (and, for a first post, of
    the bond, recorded with the transaction), so a replacement carries the same answer.

    - an Optimistic answer not yet posted: ``postOptimistic`` with ``bond``;
    - our posted answer, challenged and now proven: ``proveOptimistic``;
    - our posted answer, unchallenged, window over: ``finalize``;
    - anything else (plain, Zk, an error answer in any mode): ``fulfill``."""
    req = request_struct(row)
    if row.claim_node is not None:
        claim = claim_struct(row)
        if row.challenger is not None:
            return AnswerCall(
                "proveOptimistic", coordinator.prove_calldata(req, claim, row.proof or b"")
            )
        return AnswerCall("finalize", coordinator.finalize_calldata(req, claim))
    output = [int(v) for v in row.output] if row.output else []
    if is_posting(row):
        return AnswerCall("postOptimistic", coordinator.post_calldata(req, output), bond)
    answer = fulfil_answer(row)
    return AnswerCall(
        "fulfill",
        coordinator.fulfill_calldata(answer.req, list(answer.output), answer.err, answer.proof),
    )


def answer_err(row: InferenceRequest) -> bytes:
    """The error text ``fulfill`` carries for ``row`` (empty for an answer with an output)."""
    return (row.error or "").encode()[:MAX_ERR_BYTES]


def answer_proof(row: InferenceRequest) -> bytes:
    """The proof ``fulfill`` carries for ``row``: none with an error answer."""
    return b"" if row.error else (row.proof or b"")


def fulfil_answer(row: InferenceRequest) -> BatchAnswer:
    """What ``fulfill`` (or one item of ``fulfillBatch``) takes for ``row``: an error answer
    carries no output and no proof (the row keeps what the model gave, for the record)."""
    err = answer_err(row)
    return BatchAnswer(
        req=request_struct(row),
        output=tuple(int(v) for v in row.output) if row.output and not err else (),
        err=err,
        proof=answer_proof(row),
    )


def is_batchable(row: InferenceRequest) -> bool:
    """A row answered through ``fulfill`` (plain, Zk, any error answer): it can go in a
    ``fulfillBatch``; the optimistic moves (post with a bond, finalize, prove) go alone."""
    return row.claim_node is None and not is_posting(row)


def rows_call(
    coordinator: CoordinatorClient, rows: list[InferenceRequest], bond: int
) -> AnswerCall:
    """The call that moves ``rows`` on together: ``fulfillBatch`` of their answers in the
    given order, or the single row's own call. A pure function of the rows, so a replacement
    of the transaction (fee bump) carries the same answers."""
    if len(rows) == 1:
        return answer_call(coordinator, rows[0], bond)
    return AnswerCall(
        "fulfillBatch", batch_calldata(coordinator, [fulfil_answer(row) for row in rows])
    )


def fulfil_calldata(coordinator: CoordinatorClient, row: InferenceRequest) -> HexStr:
    """``fulfill`` call data for a row (plain and Zk answers, error answers)."""
    return answer_call(coordinator, row, 0).data


class AttemptBuilder:
    """Fees and signatures for one signer on one chain."""

    def __init__(self, settings: Settings, w3: Web3, account: LocalAccount, chain_id: int) -> None:
        self.settings = settings
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self._priority: tuple[bytes, int] | None = None  # (head hash, suggested priority fee)

    def fees(self, head: Head) -> Fees:
        """EIP-1559 fees: the head's base fee times ``max_fee_multiplier`` plus the priority
        fee (from settings, else what the node suggests, asked once per head)."""
        relayer = self.settings.relayer
        if relayer.priority_fee_gwei is not None:
            priority = int(relayer.priority_fee_gwei * 10**9)
        else:
            if self._priority is None or self._priority[0] != head.hash:
                self._priority = (head.hash, int(self.w3.eth.max_priority_fee))
            priority = self._priority[1]
        max_fee = int(head.base_fee * relayer.max_fee_multiplier) + priority
        return Fees(max_fee, priority)

    def replacement_fees(self, head: Head, old: Transaction) -> Fees:
        """Current fees, but at least ``bump_factor`` times what ``old`` offered: a node
        only accepts a replacement for a nonce that outbids the one it holds."""
        factor = self.settings.relayer.bump_factor
        now = self.fees(head)
        return Fees(
            max(now.max_fee, int(int(old.max_fee_per_gas) * factor) + 1),
            max(now.priority, int(int(old.max_priority_fee_per_gas) * factor) + 1),
        )

    def sign(
        self,
        *,
        nonce: int,
        to: str,
        gas_limit: int,
        fees: Fees,
        data: HexStr | None = None,
        value: int = 0,
    ) -> SignedAttempt:
        """Build, sign and hash a type-2 transaction carrying ``value`` wei."""
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": value,
            "gas": gas_limit,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority,
        }
        if data is not None:
            tx["data"] = data
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        return SignedAttempt(
            nonce=nonce,
            to=to,
            gas_limit=gas_limit,
            fees=fees,
            tx_hash="0x" + bytes(signed.hash).hex(),
            raw=bytes(signed.raw_transaction),
            value=value,
        )
