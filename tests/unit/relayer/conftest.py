"""A real anvil with the Coordinator, the example consumer and the example model, shared
by the package's tests (each runs on an EVM snapshot), and the relayer's parts wired to
an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from oracle.chain.client import CoordinatorClient
from oracle.chain.compile import compile_contracts
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    deploy_stack,
    register_node,
    serve_model,
)
from oracle.dev.keys import DEPLOYER_KEY, NODE_KEY, REQUESTER_KEY
from oracle.dev.processes import Anvil
from oracle.dev.requester import Requester
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.relayer.attempts import AttemptBuilder
from oracle.relayer.broadcaster import Broadcaster, RelayerHealth
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.resender import Resender
from oracle.settings import load_settings
from tests.support.chain import rpc
from tests.unit.relayer.fake_store import FakeStore
from tests.unit.relayer.parts import EXAMPLE_MODEL, Chain, Parts, coordinator_consumer_abi


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


@pytest.fixture
def snapshot(chain: Chain) -> Iterator[Chain]:
    """The module's chain, put back as it was after each test (automine on)."""
    snap = rpc(chain.w3, "evm_snapshot")
    try:
        yield chain
    finally:
        rpc(chain.w3, "evm_setAutomine", [True])
        rpc(chain.w3, "evm_revert", [snap])


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
