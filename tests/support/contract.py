"""The Coordinator alone on anvil, without the node: contract tests deploy it once and
share it, each test starting from a snapshot of the freshly deployed chain."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, RequestStruct
from oracle.chain.deploy import (
    ETHER,
    CoordinatorParams,
    deploy,
    deploy_stack,
    register_node,
    send,
    serve_model,
)
from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.dev.processes import Anvil
from oracle.errors import TransactionError
from oracle.models.registration import ZERO_ADDRESS, ZERO_HASH, content_model_id
from tests.support.chain import rpc


def artifact_code_hash(name: str) -> str:
    """The code hash a freshly deployed ``name`` has (its runtime code has no immutables)."""
    code = bytes.fromhex(load_artifact(name).deployed_bytecode.removeprefix("0x"))
    return "0x" + Web3.keccak(code).hex().removeprefix("0x")


# Stand-in ONNX hashes of the two registered models, and the ids the Coordinator gives them.
MODEL_ONNX = "0x" + "11" * 32
ZK_MODEL_ONNX = "0x" + "22" * 32
MODEL = content_model_id(MODEL_ONNX, ZERO_HASH, 2, 1, 16, 16)
ZK_MODEL = content_model_id(ZK_MODEL_ONNX, artifact_code_hash("MockVerifier"), 2, 1, 0, 0)
OWNER, NODE, USER, OUTSIDER = (Account.from_key(k) for k in ANVIL_DEV_KEYS[:4])
TIMEOUT_BLOCKS = 5
EXCLUSIVE_WINDOW_BLOCKS = 2


@dataclass
class Chain:
    w3: Web3
    coord: CoordinatorClient
    consumer: Any
    verifier: Any

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load_artifact(name).abi
        )

    def deploy_consumer(self, name: str) -> Any:
        address, _ = deploy(self.w3, OWNER, name, self.coord.address)
        return self.contract(name, address)

    def request(
        self,
        values: list[int],
        consumer: Any = None,
        mode: int = 0,
        gas: int = 200_000,
        model: str = MODEL,
    ) -> RequestStruct:
        consumer = consumer or self.consumer
        fee = self.coord.quote_fee(model, mode, gas)
        receipt = send(
            self.w3,
            USER,
            consumer.functions.requestPrediction(bytes.fromhex(model[2:]), values, mode, gas),
            value=fee,
        )
        return requested(self.coord, receipt)

    def fulfill(
        self,
        req: RequestStruct,
        output: list[int],
        err: bytes = b"",
        proof: bytes = b"",
        sender: LocalAccount = NODE,
        gas: int | None = None,
    ) -> Any:
        return send(
            self.w3,
            sender,
            self.coord.contract.functions.fulfill(req.as_tuple(), output, err, proof),
            gas=gas,
        )


def register_raw(
    w3: Web3,
    coord: Any,
    account: LocalAccount,
    onnx_hash: str,
    shape: tuple[int, int, int, int],
    verifier: str = ZERO_ADDRESS,
) -> tuple[str, Any]:
    """``registerModel(onnx_hash, *shape, verifier)``: (the id it returned, the receipt).

    The returned id is read with an ``eth_call`` just before sending (the same block state)."""
    fn = coord.functions.registerModel(bytes.fromhex(onnx_hash[2:]), *shape, verifier)
    model_id = "0x" + bytes(fn.call({"from": account.address})).hex()
    return model_id, send(w3, account, fn)


def requested(coord: CoordinatorClient, receipt: Any) -> RequestStruct:
    """The request a receipt's ``InferenceRequested`` log announced, as ``fulfill`` takes it."""
    (req,) = coord.requested_in_receipt(receipt)
    return req


def reverts_with(name: str, fn: Any) -> None:
    with pytest.raises(TransactionError) as info:
        fn()
    assert f"{name}(" in str(info.value), str(info.value)


@contextmanager
def deployed_chain(tmp: Path, fee_change_delay_blocks: int = 100) -> Iterator[Chain]:
    """anvil with the Coordinator (short timeout and exclusive window, inputs up to 16), the
    example consumer, one staked node serving a plain model and a Zk model on a mock
    verifier."""
    node = Anvil(tmp / "anvil.log")
    node.start()
    try:
        w3 = node.w3()
        dep = deploy_stack(
            w3,
            OWNER,
            node.url,
            CoordinatorParams(
                request_timeout_blocks=TIMEOUT_BLOCKS,
                max_input_length=16,
                fee_change_delay_blocks=fee_change_delay_blocks,
                exclusive_window_blocks=EXCLUSIVE_WINDOW_BLOCKS,
            ),
        )
        coord = CoordinatorClient(w3, dep.coordinator)
        register_node(w3, NODE, dep.coordinator, ETHER)
        verifier_address, _ = deploy(w3, OWNER, "MockVerifier")
        plain, _ = register_raw(w3, coord.contract, OWNER, MODEL_ONNX, (2, 1, 16, 16))
        zk_id, _ = register_raw(
            w3, coord.contract, OWNER, ZK_MODEL_ONNX, (2, 1, 0, 0), verifier_address
        )
        assert (plain, zk_id) == (MODEL, ZK_MODEL), "the Coordinator's id rule changed"
        for model in (MODEL, ZK_MODEL):
            serve_model(w3, NODE, dep.coordinator, model)
        ch = Chain(w3, coord, None, None)
        ch.consumer = ch.contract("ExampleConsumer", dep.example_consumer)
        ch.verifier = ch.contract("MockVerifier", verifier_address)
        yield ch
    finally:
        node.stop()


@contextmanager
def reverted_after(ch: Chain) -> Iterator[Chain]:
    """``ch`` as it is now, and again exactly so once the block is left."""
    snapshot = rpc(ch.w3, "evm_snapshot")
    try:
        yield ch
    finally:
        assert rpc(ch.w3, "evm_revert", [snapshot]) is True
