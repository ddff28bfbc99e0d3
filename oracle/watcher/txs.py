"""The watcher's transactions: simulate, sign, (the caller saves the hash), send, read back.

What this guarantees: a transaction is only signed after an ``eth_call`` of the same call
succeeded at the head, and a revert comes back decoded (:class:`RevertError`), not raised.
What it leaves to the caller: saving the hash between :meth:`TxSender.sign` and
:meth:`TxSender.send`, and deciding after a restart (:meth:`TxSender.state`) whether a saved
transaction is mined, still pending, or was never sent."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception

from oracle.chain.client import RevertError, revert_from_exception

log = structlog.get_logger(__name__)


class TxState(enum.StrEnum):
    MINED = "mined"  # receipt with status 1
    REVERTED = "reverted"  # receipt with status 0
    PENDING = "pending"  # the RPC node knows it, no receipt yet
    UNKNOWN = "unknown"  # never sent (a crash after signing), or dropped


@dataclass(frozen=True)
class SignedTx:
    tx_hash: str
    raw: bytes


class TxSender:
    """Sends calls to one contract from one account (used by nothing else: the watcher's key
    is its own, so the pending nonce is ours to take)."""

    def __init__(
        self, w3: Web3, account: LocalAccount, to: str, gas_multiplier: float = 1.25
    ) -> None:
        self.w3 = w3
        self.account = account
        self.to = Web3.to_checksum_address(to)
        self.gas_multiplier = gas_multiplier

    def _call(self, data: str, value: int) -> dict[str, Any]:
        return {"from": self.account.address, "to": self.to, "data": data, "value": value}

    def simulate(self, data: str, value: int = 0) -> RevertError | None:
        """None if the call would succeed now; the decoded revert if not. RPC failures raise."""
        try:
            self.w3.eth.call(self._call(data, value))  # type: ignore[arg-type]
        except (Web3Exception, ValueError) as exc:
            revert = revert_from_exception(exc)
            if revert is None:
                raise
            return revert
        return None

    def sign(self, data: str, value: int = 0) -> SignedTx:
        """Sign the call with the next nonce (nothing is sent)."""
        call = self._call(data, value)
        gas = int(self.w3.eth.estimate_gas(call) * self.gas_multiplier)  # type: ignore[arg-type]
        block: Any = self.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0))
        priority = int(self.w3.eth.max_priority_fee)
        tx = {
            **call,
            "gas": gas,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "maxFeePerGas": 2 * base_fee + priority,
            "maxPriorityFeePerGas": priority,
        }
        signed = self.account.sign_transaction(tx)
        return SignedTx("0x" + bytes(signed.hash).hex().removeprefix("0x"), signed.raw_transaction)

    def send(self, signed: SignedTx) -> None:
        """Broadcast; a node that already has it (a re-send) is not an error."""
        try:
            self.w3.eth.send_raw_transaction(signed.raw)
        except (Web3Exception, ValueError) as exc:
            if "already known" in str(exc).lower():
                return
            raise

    def state(self, tx_hash: str) -> tuple[TxState, int | None]:
        """Where a saved transaction is, and its block when mined."""
        try:
            receipt: Any = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            receipt = None
        if receipt is not None:
            ok = int(receipt["status"]) == 1
            return (TxState.MINED if ok else TxState.REVERTED), int(receipt["blockNumber"])
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return TxState.UNKNOWN, None
        return TxState.PENDING, None
