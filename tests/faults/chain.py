"""Helpers the fault tests share: raw anvil RPC, hand-made requests, and reading the
node's rows and the chain's events."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from sqlalchemy import select
from web3 import Web3

from oracle.db import InferenceRequest, Transaction
from oracle.dev.keys import REQUESTER_KEY
from oracle.types import Mode, TxStatus
from tests.conftest import Stack, wait_for

INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]
GAS = 300_000


def rpc(w3: Web3, method: str, params: list[Any] | None = None) -> Any:
    response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc(w3, "evm_mine")


def signed_request(stack: Stack, nonce: int) -> HexBytes:
    """A request tx from the example consumer, signed but not sent."""
    account = Account.from_key(REQUESTER_KEY)
    fn = stack.requester.consumer.functions.requestPrediction(
        bytes.fromhex(stack.model_id[2:]), INPUT, int(Mode.NONE), GAS
    )
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": stack.coordinator.quote_fee(stack.model_id, Mode.NONE, GAS),
            "nonce": nonce,
            "gas": 400_000,
            "chainId": stack.w3.eth.chain_id,
        }
    )
    return HexBytes(account.sign_transaction(tx).raw_transaction)


def row(stack: Stack, request_id: int) -> InferenceRequest | None:
    with stack.db.session() as s:
        found = s.scalars(
            select(InferenceRequest).where(InferenceRequest.request_id == request_id)
        ).first()
        if found is not None:
            s.expunge(found)
        return found


def fulfilled_events(stack: Stack, request_id: int) -> list[Any]:
    return list(
        stack.coordinator.contract.events.InferenceFulfilled().get_logs(
            from_block=0, argument_filters={"requestId": request_id}
        )
    )


def all_txs_settled(stack: Stack) -> bool:
    with stack.db.session() as s:
        statuses = set(s.scalars(select(Transaction.status)))
    return statuses <= {TxStatus.CONFIRMED.value, TxStatus.REVERTED.value, TxStatus.DROPPED.value}


def start_node(stack: Stack, **chain: Any) -> Any:
    from oracle.node import Node

    settings = stack.settings.model_copy(
        update={
            "chain": stack.settings.chain.model_copy(update=chain),
            "relayer": stack.settings.relayer.model_copy(update={"rebroadcast_after_s": 1.0}),
            # a job whose broker message was lost is handed out again quickly
            "worker": stack.settings.worker.model_copy(update={"requeue_after_s": 5.0}),
        }
    )
    node = Node.with_celery(settings, serve_status=False)
    node.start()
    return node


def send_request(stack: Stack, blocks: int = 1) -> int:
    """Send one request from the example consumer, mine ``blocks``; return its id."""
    w3 = stack.w3
    nonce = w3.eth.get_transaction_count(Account.from_key(REQUESTER_KEY).address, "pending")
    w3.eth.send_raw_transaction(signed_request(stack, nonce))
    mine(w3, blocks)
    return int(stack.coordinator.contract.functions.nextRequestId().call()) - 1


def wait_status(
    stack: Stack, request_id: int, status: str, timeout: float, what: str, mining: bool = False
) -> None:
    """Wait for the request's row to reach ``status``; with ``mining``, mine a block each
    poll (automine off) so confirmations advance."""

    def reached() -> bool:
        if mining:
            mine(stack.w3)
        r = row(stack, request_id)
        return r is not None and r.status == status

    wait_for(reached, timeout, what, interval=0.3 if mining else 0.05)


def with_relayer_settings(node: Any, **updates: Any) -> None:
    """Change a running node's relayer settings (the relayer reads them on every tick)."""
    relayer = node.relayer
    relayer.settings = relayer.settings.model_copy(
        update={"relayer": relayer.settings.relayer.model_copy(update=updates)}
    )


def logs(stack: Stack, event: str) -> dict[int, list[int]]:
    """request id -> block numbers of ``event`` on the canonical chain."""
    found: dict[int, list[int]] = {}
    contract_event = getattr(stack.coordinator.contract.events, event)()
    for log in contract_event.get_logs(from_block=0):
        found.setdefault(int(log["args"]["requestId"]), []).append(int(log["blockNumber"]))
    return found
