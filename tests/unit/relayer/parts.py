"""The relayer's parts wired to an in-memory store on a real anvil chain (the chain and
its snapshots are the package's fixtures, in conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3

from oracle.chain.client import CoordinatorClient
from oracle.chain.deploy import Deployment
from oracle.db import InferenceRequest
from oracle.dev.processes import Anvil
from oracle.dev.requester import Requester
from oracle.paths import ROOT
from oracle.relayer.attempts import AttemptBuilder, Head
from oracle.relayer.broadcaster import Broadcaster, RelayerHealth
from oracle.relayer.confirmer import Confirmer
from oracle.relayer.resender import Resender
from oracle.settings import Settings
from oracle.types import RequestStatus
from tests.unit.relayer.fake_store import FakeStore

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"
INPUT = [1 << 15, -(1 << 14), 1 << 13, 0]


@dataclass
class Chain:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    coordinator: CoordinatorClient
    requester: Requester
    model_id: str
    node: LocalAccount


def coordinator_consumer_abi() -> Any:
    from oracle.chain.artifacts import load_artifact

    return load_artifact("ExampleConsumer").abi


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

    def request(self, error: str | None = None, gas: int = 300_000) -> InferenceRequest:
        """A request on chain (``gas`` of callback gas), and its row in the store, ready to
        send (an output, or an error answer)."""
        request_id, _ = self.chain.requester.submit(self.chain.model_id, INPUT, 0, gas)
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
