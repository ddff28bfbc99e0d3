"""Chain helpers: raw anvil RPC, mining, hand-made requests, and reading the
Coordinator's events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from oracle.dev.keys import ANVIL_DEV_KEYS, REQUESTER_KEY
from oracle.types import Mode

if TYPE_CHECKING:
    from tests.support.stack import Stack

INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]
GAS = 300_000


def rpc(w3: Web3, method: str, params: list[Any] | None = None) -> Any:
    response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(w3, "evm_mine")


def deploy_consumer(w3: Web3, name: str, coordinator: str) -> Any:
    """A consumer contract (``RevertingConsumer``, ``GasHungryConsumer``...) on ``w3``."""
    from oracle.chain.artifacts import load_artifact
    from oracle.chain.deploy import deploy

    address, _ = deploy(w3, Account.from_key(ANVIL_DEV_KEYS[0]), name, coordinator)
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def signed_request(
    stack: Stack,
    nonce: int,
    values: list[int] | None = None,
    fee: int | None = None,
    consumer: Any = None,
    model_id: str | None = None,
    mode: Mode = Mode.NONE,
    tx_gas: int = 400_000,
) -> HexBytes:
    """A request tx from the example consumer (or ``consumer``) for the stack's example model
    (or ``model_id``), signed but not sent."""
    account = Account.from_key(REQUESTER_KEY)
    model = model_id or stack.model_id
    fn = (consumer or stack.requester.consumer).functions.requestPrediction(
        bytes.fromhex(model[2:]), values or INPUT, int(mode), GAS
    )
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": fee if fee is not None else stack.coordinator.quote_fee(model, mode, GAS),
            "nonce": nonce,
            "gas": tx_gas,
            "chainId": stack.w3.eth.chain_id,
        }
    )
    return HexBytes(account.sign_transaction(tx).raw_transaction)


def send_request(stack: Stack, blocks: int = 1) -> int:
    """Send one request from the example consumer, mine ``blocks``; return its id."""
    w3 = stack.w3
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    w3.eth.send_raw_transaction(signed_request(stack, nonce))
    mine(w3, blocks)
    return int(stack.coordinator.contract.functions.nextRequestId().call()) - 1


def burst(stack: Stack, n: int) -> list[int]:
    """Send ``n`` requests back to back (automine: one block each); return their ids."""
    w3 = stack.w3
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    fee = stack.coordinator.quote_fee(stack.model_id, Mode.NONE, GAS)
    first = int(stack.coordinator.contract.functions.nextRequestId().call())
    for i in range(n):
        values = [(i + 1) << 12, -(i << 11), 1 << 13, 0]
        w3.eth.send_raw_transaction(signed_request(stack, nonce + i, values, fee))
    return list(range(first, first + n))


def fulfilled_events(stack: Stack, request_id: int) -> list[Any]:
    return list(
        stack.coordinator.contract.events.InferenceFulfilled().get_logs(
            from_block=0, argument_filters={"requestId": request_id}
        )
    )


def logs(stack: Stack, event: str) -> dict[int, list[int]]:
    """request id -> block numbers of ``event`` on the canonical chain."""
    found: dict[int, list[int]] = {}
    contract_event = getattr(stack.coordinator.contract.events, event)()
    for log in contract_event.get_logs(from_block=0):
        found.setdefault(int(log["args"]["requestId"]), []).append(int(log["blockNumber"]))
    return found
