"""A real anvil with the Coordinator, the example consumer and the example model, shared
by the package's tests (each runs on an EVM snapshot), and the relayer's parts wired to
an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3

from oracle.chain.client import CoordinatorClient
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    Deployment,
    deploy_stack,
    register_node,
    serve_model,
)
from oracle.db import InferenceRequest
from oracle.dev.keys import DEPLOYER_KEY, NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import Anvil
from oracle.dev.requester import Requester
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from oracle.relayer.attempts import AttemptBuilder, Head
from oracle.relayer.broadcaster import Broadcaster, RelayerHealth
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.resender import Resender
from oracle.settings import Settings, load_settings
from oracle.types import RequestStatus
from tests.unit.relayer.fake_store import FakeStore

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"
INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]


def rpc(w3: Web3, method: str, params: list[Any] | None = None) -> Any:
    response = w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
    assert "error" not in response, response
    return response["result"]


@dataclass
class Chain:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    coordinator: CoordinatorClient
    requester: Requester
    model_id: str
    node: LocalAccount


@pytest.fixture(scope="package")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    compile_contracts()
    tmp: Path = tmp_path_factory.mktemp("relayer")
    anvil = Anvil(tmp / "anvil.log")
    anvil.start()
    try:
        w3 = anvil.w3()
        owner = Account.from_key(DEPLOYER_KEY)
        node = Account.from_key(NODE_KEY)
        deployment = deploy_stack(w3, owner, anvil.url, CoordinatorParams())
        register_node(w3, node, deployment.coordinator, 2 * ETHER)
        coordinator = CoordinatorClient(w3, deployment.coordinator)
        model_id, _ = register_model(
            None, ArtifactStore(tmp / "models"), coordinator, owner, EXAMPLE_MODEL, 16, 16
        )
        serve_model(w3, node, deployment.coordinator, model_id)
        consumer = w3.eth.contract(
            address=Web3.to_checksum_address(deployment.example_consumer),
            abi=coordinator_consumer_abi(),
        )
        requester = Requester(w3, coordinator, consumer, Account.from_key(REQUESTER_KEY))
        yield Chain(anvil, w3, deployment, coordinator, requester, model_id, node)
    finally:
        anvil.stop()


def coordinator_consumer_abi() -> Any:
    from oracle.chain.artifacts import load_artifact

    return load_artifact("ExampleConsumer").abi


@pytest.fixture
def snapshot(chain: Chain) -> Iterator[Chain]:
    """The module's chain, put back as it was after each test (automine on)."""
    snap = rpc(chain.w3, "evm_snapshot")
    try:
        yield chain
    finally:
        rpc(chain.w3, "evm_setAutomine", [True])
        rpc(chain.w3, "evm_revert", [snap])


@dataclass
class Parts:
    chain: Chain
    settings: Settings
    store: FakeStore
    attempts: AttemptBuilder
    confirmer: Confirmer
    broadcaster: Broadcaster
    resender: Resender
    health: RelayerHealth

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    def head(self) -> Head:
        return Head(self.w3)

    def request(self, error: str | None = None) -> InferenceRequest:
        """A request on chain, and its row in the store, ready to send (an output, or an
        error answer)."""
        request_id, _ = self.chain.requester.submit(self.chain.model_id, INPUT, 0, 300_000)
        (ev,) = self.chain.coordinator.requested_logs(0, self.w3.eth.block_number)[-1:]
        assert ev.request_id == request_id
        row = InferenceRequest(
            chain_id=int(self.w3.eth.chain_id),
            coordinator=self.chain.coordinator.address,
            request_id=ev.request_id,
            model_id=ev.model_id,
            consumer=ev.consumer,
            input=list(ev.input),
            mode=int(ev.mode),
            callback_gas_limit=ev.callback_gas_limit,
            fee=str(ev.fee),
            block_number=ev.block_number,
            block_hash=ev.block_hash,
            tx_hash=ev.tx_hash,
            log_index=ev.log_index,
            status=RequestStatus.INFERRED.value,
            output=[] if error else [12345],
            error=error,
            fulfil_reverts=0,
        )
        return self.store.add_request(row)

    def mined(self, tx_hash: str | HexBytes) -> Any:
        """The receipt, once anvil has mined it (automine mines just after the send returns)."""
        return self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), 10, 0.05)

    def chain_nonce(self, block: str = "latest") -> int:
        return int(self.w3.eth.get_transaction_count(self.chain.node.address, block))  # type: ignore[arg-type]


@pytest.fixture
def parts(snapshot: Chain) -> Parts:
    settings = load_settings(
        None,
        chain={"rpc_url": snapshot.anvil.url, "confirmations": 0, "finality_depth": 4},
        relayer={"bump_after_blocks": 2, "rebroadcast_after_s": 3600},
    )
    store = FakeStore()
    sender = snapshot.node.address
    health = RelayerHealth()
    attempts = AttemptBuilder(settings, snapshot.w3, snapshot.node, int(snapshot.w3.eth.chain_id))
    confirmer = Confirmer(settings, snapshot.coordinator, store, sender)
    broadcaster = Broadcaster(
        settings, snapshot.coordinator, store, attempts, confirmer, sender, health
    )
    resender = Resender(settings, snapshot.coordinator, store, attempts, broadcaster, sender)
    return Parts(snapshot, settings, store, attempts, confirmer, broadcaster, resender, health)
