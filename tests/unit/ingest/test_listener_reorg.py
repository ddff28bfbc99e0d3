"""The listener's reorg logic against a real anvil, with the database boundary faked.

Reorgs are made the way a chain makes them: ``evm_snapshot``, blocks the listener reads,
``evm_revert``, then a competing fork mined on top of the snapshot (with later
timestamps, so every block of the fork has a new hash).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import ETHER, deploy_stack, register_node, serve_model
from oracle.dev.keys import DEPLOYER_KEY, NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import Anvil
from oracle.errors import ReorgTooDeepError
from oracle.ingest.listener import Listener
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from oracle.settings import ChainSettings
from oracle.types import Mode, RequestStatus
from tests.unit.ingest.fake_store import FakeListenerStore

INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]
GAS = 300_000


@dataclass
class Chain:
    w3: Web3
    coordinator: CoordinatorClient
    consumer: Any
    model_id: str

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def signed_request(self) -> HexBytes:
        account = Account.from_key(REQUESTER_KEY)
        fn = self.consumer.functions.requestPrediction(
            bytes.fromhex(self.model_id[2:]), INPUT, int(Mode.NONE), GAS
        )
        tx = fn.build_transaction(
            {
                "from": account.address,
                "value": self.coordinator.quote_fee(self.model_id, Mode.NONE, GAS),
                "nonce": self.w3.eth.get_transaction_count(account.address),
                "gas": 400_000,
                "chainId": self.w3.eth.chain_id,
            }
        )
        return HexBytes(account.sign_transaction(tx).raw_transaction)

    def send(self, raw: HexBytes) -> int:
        """Send a signed request (automine puts it in its own block); its request id."""
        self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(raw))
        return int(self.coordinator.contract.functions.nextRequestId().call()) - 1

    def competing_fork(self, snapshot: str) -> None:
        """Back to ``snapshot``; what follows is mined later, so it has other hashes."""
        assert self.rpc("evm_revert", [snapshot]) is True
        self.rpc("anvil_dropAllTransactions")
        self.rpc("evm_increaseTime", [3600])

    def hash_of(self, number: int) -> str:
        return "0x" + bytes(self.w3.eth.get_block(number)["hash"]).hex()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    compile_contracts()
    anvil = Anvil(tmp_path / "anvil.log")
    anvil.start()
    try:
        w3 = anvil.w3()
        owner = Account.from_key(DEPLOYER_KEY)
        deployment = deploy_stack(w3, owner, anvil.url)
        register_node(w3, Account.from_key(NODE_KEY), deployment.coordinator, 2 * ETHER)
        coordinator = CoordinatorClient(w3, deployment.coordinator)
        model_id, _ = register_model(
            None,
            ArtifactStore(tmp_path / "models"),
            coordinator,
            owner,
            ROOT / "models" / "example_mlp.onnx",
            16,
            16,
        )
        serve_model(w3, Account.from_key(NODE_KEY), deployment.coordinator, model_id)
        consumer = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.example_consumer),
            abi=load_artifact("ExampleConsumer").abi,
        )
        yield Chain(w3, coordinator, consumer, model_id)
    finally:
        anvil.stop()


def listener_on(
    chain: Chain, store: FakeListenerStore, finality_depth: int, dispatched: list[int] | None = None
) -> Listener:
    """A listener that reads every block at once (no confirmations) into ``store``."""
    return Listener(
        ChainSettings(confirmations=0, finality_depth=finality_depth),
        store,
        chain.coordinator,
        int(chain.w3.eth.chain_id),
        (dispatched if dispatched is not None else []).extend,
    )


def test_shallow_reorg_rewinds_to_the_fork_point_and_marks_orphaned_rows(chain: Chain) -> None:
    store = FakeListenerStore()
    listener = listener_on(chain, store, finality_depth=10)
    listener.poll_once()
    fork_point = chain.w3.eth.block_number
    snapshot = chain.rpc("evm_snapshot")
    request_id = chain.send(chain.signed_request())
    chain.mine()
    result = listener.poll_once()
    assert result.new_rows == [store.rows[request_id].id]
    assert store.rows[request_id].status == RequestStatus.SEEN.value
    orphaned_block = store.rows[request_id].block_number
    assert orphaned_block == fork_point + 1

    chain.competing_fork(snapshot)
    chain.mine(3)  # longer than the orphaned branch, without the request
    assert listener.reorgs_seen == 0
    result = listener.poll_once()

    assert result.reorg_from == fork_point + 1
    assert listener.reorgs_seen == 1  # what /metrics reports as oracle_reorgs_total
    cursor = store.cursor()
    assert cursor is not None
    assert (cursor.block_number, cursor.block_hash) == (fork_point, chain.hash_of(fork_point))
    assert store.rows[request_id].status == RequestStatus.REORGED.value
    assert max(store.blocks) == fork_point  # nothing remembered from the orphaned branch

    listener.poll_once()  # reads the new branch: nothing brings the request back
    assert store.rows[request_id].status == RequestStatus.REORGED.value
    cursor = store.cursor()
    assert cursor is not None and cursor.block_number == chain.w3.eth.block_number


def test_request_that_comes_back_in_another_block_is_reopened(chain: Chain) -> None:
    store = FakeListenerStore()
    dispatched: list[int] = []
    listener = listener_on(chain, store, finality_depth=10, dispatched=dispatched)
    listener.poll_once()
    snapshot = chain.rpc("evm_snapshot")
    raw = chain.signed_request()
    request_id = chain.send(raw)
    chain.mine()
    listener.poll_once()
    first_block = store.rows[request_id].block_number

    chain.competing_fork(snapshot)
    chain.mine()  # an empty block first: the request lands one block higher
    assert chain.send(raw) == request_id
    moved_to = chain.w3.eth.block_number
    chain.mine()
    assert listener.poll_once().reorg_from is not None
    assert store.rows[request_id].status == RequestStatus.REORGED.value
    result = listener.poll_once()

    row = store.rows[request_id]
    assert result.new_rows == [row.id]
    assert row.status == RequestStatus.SEEN.value
    assert row.block_number == moved_to != first_block
    assert row.block_hash == chain.hash_of(moved_to)
    assert dispatched == [row.id, row.id]  # handed to the workers again


def test_reorg_deeper_than_the_finality_depth_halts(chain: Chain) -> None:
    store = FakeListenerStore()
    listener = listener_on(chain, store, finality_depth=3)
    listener.poll_once()
    snapshot = chain.rpc("evm_snapshot")
    chain.mine(8)
    listener.poll_once()
    cursor = store.cursor()
    assert cursor is not None
    halted_at = (cursor.block_number, cursor.block_hash)

    chain.competing_fork(snapshot)
    chain.mine(12)  # forks below every block remembered within the finality depth
    with pytest.raises(ReorgTooDeepError, match="finality depth"):
        listener.poll_once()

    assert store.halted_reason is not None and "finality depth" in store.halted_reason
    assert listener.reorgs_seen == 0  # halted, not handled
    cursor = store.cursor()
    assert cursor is not None and (cursor.block_number, cursor.block_hash) == halted_at
    result = listener.poll_once()  # halted: reads nothing more, moves nothing
    assert result.halted and result.new_rows == []
    cursor = store.cursor()
    assert cursor is not None and (cursor.block_number, cursor.block_hash) == halted_at
