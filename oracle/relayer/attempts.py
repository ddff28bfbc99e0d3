"""The attempt builder: what a fulfilment transaction says, what it offers to pay, and
the one place where a transaction is built, signed and hashed.

It guarantees that the ``fulfill`` call data is a pure function of the request row (so a
replacement carries exactly the same answer), that fees follow EIP-1559 from the head block
it is given, that a replacement outbids the attempt it replaces by ``bump_factor``, and that
every transaction the relayer sends is a type-2 transaction signed by :meth:`sign`.

It reads nothing from the database and sends nothing: choosing the nonce, saving and
broadcasting is the :class:`~oracle.relayer.broadcaster.Broadcaster`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.db import InferenceRequest, Transaction
from oracle.settings import Settings

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


def fulfil_calldata(coordinator: CoordinatorClient, row: InferenceRequest) -> HexStr:
    """``fulfill`` call data for a row: a pure function of the row, so a replacement
    transaction carries exactly the same answer."""
    req = RequestStruct(
        request_id=row.request_id,
        model_id=row.model_id,
        consumer=row.consumer,
        mode=row.mode,
        callback_gas_limit=row.callback_gas_limit,
        requested_at_block=row.block_number,
        fee=int(row.fee),
        input=tuple(int(v) for v in row.input),
    )
    output = [int(v) for v in row.output] if row.output else []
    err = (row.error or "").encode()[:MAX_ERR_BYTES]
    return coordinator.fulfill_calldata(req, output, err, row.proof or b"")


class AttemptBuilder:
    """Fees and signatures for one signer on one chain."""

    def __init__(self, settings: Settings, w3: Web3, account: LocalAccount, chain_id: int) -> None:
        self.settings = settings
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id

    def fees(self, head: Head) -> Fees:
        """EIP-1559 fees: the head's base fee times ``max_fee_multiplier`` plus the priority
        fee (from settings, else what the node suggests)."""
        relayer = self.settings.relayer
        if relayer.priority_fee_gwei is not None:
            priority = int(relayer.priority_fee_gwei * 10**9)
        else:
            priority = int(self.w3.eth.max_priority_fee)
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
        self, *, nonce: int, to: str, gas_limit: int, fees: Fees, data: HexStr | None = None
    ) -> SignedAttempt:
        """Build, sign and hash a 0-value type-2 transaction."""
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
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
        )
