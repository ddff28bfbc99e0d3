"""Send requests through a consumer contract and wait for the callback (CLI, demo, bench)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from oracle.chain.artifacts import load_artifact
from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.deploy import send
from oracle.dev.keys import REQUESTER_KEY
from oracle.errors import ConfigError, OracleError
from oracle.fixedpoint import from_fixed, to_fixed
from oracle.settings import Settings
from oracle.types import Mode

log = structlog.get_logger(__name__)
ANVIL_CHAIN_IDS = {31337}


def parse_mode(text: str) -> Mode:
    try:
        return Mode[text.strip().upper()]
    except KeyError:
        raise ValueError(f"--mode must be none, zk or optimistic, not {text!r}") from None


def parse_values(text: str, raw: bool) -> list[float] | list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("--input needs at least one number, e.g. --input 0.5,1,-2")
    try:
        if raw:
            return [int(p, 0) for p in parts]
        return [float(p) for p in parts]
    except ValueError:
        kind = "integers" if raw else "numbers"
        raise ValueError(f"--input must be comma-separated {kind}, got {text!r}") from None


@dataclass
class Requester:
    w3: Web3
    coordinator: CoordinatorClient
    consumer: Any
    account: LocalAccount

    @classmethod
    def from_settings(
        cls, settings: Settings, consumer: str | None = None, key: str | None = None
    ) -> Requester:
        w3 = connect(settings.chain.rpc_url, settings.chain.rpc_timeout_s)
        coordinator = CoordinatorClient(w3, settings.coordinator_address())
        deployment = settings.deployment() or {}
        address = consumer or deployment.get("example_consumer")
        if not address:
            raise ConfigError("no consumer: pass --consumer or use a deployment file")
        if key is None and settings.requester_key is not None:
            key = settings.requester_key.get_secret_value()
        if key is None:
            if int(w3.eth.chain_id) not in ANVIL_CHAIN_IDS:
                raise ConfigError("set ORACLE_REQUESTER_KEY to the key that pays for requests")
            key = REQUESTER_KEY  # anvil's public development key: local chains only
        contract = w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load_artifact("ExampleConsumer").abi
        )
        return cls(w3, coordinator, contract, Account.from_key(key))

    def submit(
        self, model_id: str, values: list[int], mode: int, callback_gas: int
    ) -> tuple[int, int]:
        """Send one request; return (request id, block number)."""
        fee = self.coordinator.quote_fee(model_id, mode, callback_gas)
        receipt = send(
            self.w3,
            self.account,
            self.consumer.functions.requestPrediction(
                bytes.fromhex(model_id[2:]), values, mode, callback_gas
            ),
            value=fee,
        )
        events = self.coordinator.contract.events.InferenceRequested().process_receipt(
            receipt, errors=DISCARD
        )
        return int(events[0]["args"]["requestId"]), int(receipt["blockNumber"])

    def result(self, request_id: int) -> tuple[bool, list[int], bytes]:
        fulfilled, output, err = self.consumer.functions.getResult(request_id).call()
        return bool(fulfilled), [int(v) for v in output], bytes(err)

    def request_and_wait(
        self,
        model_id: str,
        values: list[float] | list[int],
        raw: bool,
        mode: int,
        callback_gas: int,
        timeout_s: float,
    ) -> dict[str, Any]:
        info = self.coordinator.model(model_id)
        if not info["exists"]:
            raise OracleError(f"model {model_id} is not registered on this Coordinator")
        ints = (
            [int(v) for v in values]
            if raw
            else [to_fixed(float(v), int(info["input_scale"])) for v in values]
        )
        request_id, block = self.submit(model_id, ints, mode, callback_gas)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            fulfilled, output, err = self.result(request_id)
            if fulfilled:
                scale = int(info["output_scale"])
                return {
                    "request_id": request_id,
                    "input_raw": [str(v) for v in ints],
                    "output_raw": [str(v) for v in output],
                    "output": [from_fixed(v, scale) for v in output],
                    "error": err.decode(errors="replace") if err else None,
                    "blocks": int(self.w3.eth.block_number) - block,
                }
            time.sleep(0.1)
        raise OracleError(f"request {request_id} was not answered within {timeout_s:.0f}s")
