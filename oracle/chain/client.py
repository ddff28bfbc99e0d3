"""Web3 connection and a typed binding for the Coordinator contract.

ABIs and error selectors come from the compiled artifacts (``solidity/out``), never
from hand-typed JSON.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, cast

import requests
from eth_typing import ChecksumAddress, HexStr
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD
from web3.types import LogReceipt

from oracle.chain.artifacts import all_abis, decode_revert, load_artifact
from oracle.chain.codec import CallCodec, EventCodec
from oracle.chain.optimistic import Challenge, ClaimStruct, OptimisticConfig, PostedAnswer
from oracle.errors import ChainError
from oracle.types import Mode, ModelId, RequestId, model_id_from_bytes


def connect(rpc_url: str, timeout_s: float = 10.0) -> Web3:
    """An HTTP Web3 client. One per thread: the provider's session is not shared.

    The proxy settings of the environment (``HTTPS_PROXY``, ``NO_PROXY``...) are read once
    here (with a CA bundle named by ``REQUESTS_CA_BUNDLE``), not on every call:
    ``requests`` otherwise re-reads them for each request, a fifth of the relayer's time
    per RPC call."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(rpc_url))
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if ca_bundle:
        session.verify = ca_bundle
    session.trust_env = False
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}, session=session))


@dataclass(frozen=True)
class RequestedEvent:
    """An ``InferenceRequested`` log, decoded, with where it was found, and the
    ``RequestAssigned`` log that follows it in the same transaction (None on a Coordinator
    without assignment)."""

    request_id: RequestId
    model_id: ModelId
    consumer: ChecksumAddress
    input: tuple[int, ...]
    mode: Mode | int
    callback_gas_limit: int
    fee: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    assignee: ChecksumAddress | None = None
    exclusive_until_block: int | None = None
    # A ``RequestReopened`` log (an optimistic answer was slashed): the request is open again
    # in ``mode`` (Zk) from ``block_number``, for the fee already paid.
    reopened: bool = False

    def as_request(self) -> RequestStruct:
        """The request as the Coordinator committed it (opened in this log's block)."""
        return RequestStruct(
            request_id=self.request_id,
            model_id=self.model_id,
            consumer=self.consumer,
            mode=int(self.mode),
            callback_gas_limit=self.callback_gas_limit,
            requested_at_block=self.block_number,
            fee=self.fee,
            input=self.input,
        )


@dataclass(frozen=True)
class RequestStruct:
    """The ``ICoordinator.Request`` struct whose hash is the on-chain commitment."""

    request_id: int
    model_id: str
    consumer: str
    mode: int
    callback_gas_limit: int
    requested_at_block: int
    fee: int
    input: tuple[int, ...]

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.request_id,
            bytes.fromhex(self.model_id.removeprefix("0x")),
            Web3.to_checksum_address(self.consumer),
            self.mode,
            self.callback_gas_limit,
            self.requested_at_block,
            self.fee,
            list(self.input),
        )


class RevertError(ChainError):
    """A call reverted; ``name`` and ``args`` come from the custom error's ABI."""

    def __init__(self, name: str, args: tuple[Any, ...], raw: bytes) -> None:
        super().__init__(f"{name}{args}")
        self.name = name
        self.error_args = args
        self.raw = raw


def revert_from_exception(exc: Exception) -> RevertError | None:
    """Turn web3's revert exceptions into a decoded :class:`RevertError` when possible."""
    data: Any = getattr(exc, "data", None)
    if isinstance(exc, ContractCustomError | ContractLogicError) and data:
        raw = HexBytes(data) if isinstance(data, str) else HexBytes(cast(bytes, data))
        decoded = decode_revert(bytes(raw), all_abis())
        if decoded is not None:
            return RevertError(decoded[0], decoded[1], bytes(raw))
        return RevertError("UnknownRevert", (raw.hex(),), bytes(raw))
    if isinstance(exc, ContractLogicError):
        return RevertError("Reverted", (str(exc),), b"")
    return None


class CoordinatorClient:
    """Reads and writes the Coordinator at ``address`` through ``w3``."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address: ChecksumAddress = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(
            address=self.address, abi=load_artifact("Coordinator").abi
        )
        self.codecs = {
            name: EventCodec(self.contract.abi, name)  # type: ignore[arg-type]
            for name in (
                "InferenceRequested",
                "RequestAssigned",
                "RequestReopened",
                "InferenceFulfilled",
                "AnswerRejected",
            )
        }
        self.calls = {
            name: CallCodec(self.contract.abi, name)  # type: ignore[arg-type]
            for name in ("fulfill", "fulfillBatch", "postOptimistic", "proveOptimistic", "finalize")
        }
        self._requested = self.contract.events.InferenceRequested()
        self._fulfilled = self.contract.events.InferenceFulfilled()
        self._reopened = self.contract.events.RequestReopened()
        self._posted = self.contract.events.OptimisticAnswerPosted()
        self._challenged = self.contract.events.AnswerChallenged()
        self._slashed = self.contract.events.OptimisticAnswerSlashed()
        self.requested_topic = self._topic("InferenceRequested")
        self.assigned_topic = self._topic("RequestAssigned")
        self.reopened_topic = self._topic("RequestReopened")

    def _topic(self, event_name: str) -> HexStr:
        return HexStr("0x" + self.codecs[event_name].topic.hex())

    # -- reading ---------------------------------------------------------------------
    def requested_logs(self, from_block: int, to_block: int) -> list[RequestedEvent]:
        """Requests in the range (new, or re-opened after a slashed optimistic answer), each
        with its assignment: all logs come from one ``eth_getLogs`` call, so they are from the
        same blocks (one fork)."""
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": from_block,
                "toBlock": to_block,
                "topics": [[self.requested_topic, self.assigned_topic, self.reopened_topic]],
            }
        )
        assigned: dict[tuple[str, int], tuple[ChecksumAddress, int]] = {}
        requested: list[RequestedEvent] = []
        for log in logs:
            topic = "0x" + bytes(log["topics"][0]).hex().removeprefix("0x")
            if topic == self.assigned_topic:
                args = self.codecs["RequestAssigned"].args(log)
                key = ("0x" + bytes(log["transactionHash"]).hex(), int(args["requestId"]))
                assigned[key] = (
                    Web3.to_checksum_address(args["node"]),
                    int(args["exclusiveUntilBlock"]),
                )
            elif topic == self.reopened_topic:
                requested.append(self.decode_requested(log, reopened=True))
            else:
                requested.append(self.decode_requested(log))
        return [
            replace(ev, assignee=a[0], exclusive_until_block=a[1])
            if (a := assigned.get((ev.tx_hash, ev.request_id)))
            else ev
            for ev in requested
        ]

    def decode_requested(self, log: LogReceipt, reopened: bool = False) -> RequestedEvent:
        codec = self.codecs["RequestReopened" if reopened else "InferenceRequested"]
        return self._requested_event({**log, "args": codec.args(log)}, reopened)

    @staticmethod
    def _requested_event(ev: Any, reopened: bool) -> RequestedEvent:
        args = ev["args"]
        return RequestedEvent(
            request_id=RequestId(int(args["requestId"])),
            model_id=model_id_from_bytes(bytes(args["modelId"])),
            consumer=Web3.to_checksum_address(args["consumer"]),
            input=tuple(int(x) for x in args["input"]),
            mode=int(args["mode"]),
            callback_gas_limit=int(args["callbackGasLimit"]),
            fee=int(args["fee"]),
            block_number=int(ev["blockNumber"]),
            block_hash="0x" + bytes(ev["blockHash"]).hex(),
            tx_hash="0x" + bytes(ev["transactionHash"]).hex(),
            log_index=int(ev["logIndex"]),
            reopened=reopened,
        )

    def fulfilled_in_receipt(self, receipt: Any) -> list[dict[str, Any]]:
        """Decoded ``InferenceFulfilled`` events of one receipt."""
        return self.codecs["InferenceFulfilled"].in_receipt(receipt, self.address)

    def fulfilment_of(self, request_id: int, from_block: int) -> dict[str, Any] | None:
        """The latest ``InferenceFulfilled`` of a request on the current chain, or None:
        ``node``, ``block``, ``tx_hash``, ``callback_succeeded``."""
        logs = self._fulfilled.get_logs(
            from_block=from_block, argument_filters={"requestId": request_id}
        )
        if not logs:
            return None
        ev = logs[-1]
        return {
            "node": Web3.to_checksum_address(ev["args"]["node"]),
            "block": int(ev["blockNumber"]),
            "tx_hash": "0x" + bytes(ev["transactionHash"]).hex(),
            "callback_succeeded": bool(ev["args"]["callbackSucceeded"]),
        }

    def commitment(self, request_id: int) -> bytes:
        return bytes(self.contract.functions.requestCommitment(request_id).call())

    # -- optimistic mode -------------------------------------------------------------
    def claim_commitment(self, request_id: int) -> bytes:
        """The hash of a request's open optimistic answer; 32 zero bytes when none."""
        return bytes(self.contract.functions.claimCommitment(request_id).call())

    def optimistic_config(self) -> OptimisticConfig:
        raw = self.contract.functions.optimisticConfig().call()
        return OptimisticConfig(*(int(v) for v in raw))

    def _decode_posted(self, ev: Any) -> PostedAnswer:
        args = ev["args"]
        return PostedAnswer(
            request_id=int(args["requestId"]),
            node=Web3.to_checksum_address(args["node"]),
            output=tuple(int(v) for v in args["output"]),
            bond=int(args["bond"]),
            challenge_deadline=int(args["challengeDeadline"]),
            proof_deadline=int(args["proofDeadline"]),
            block_number=int(ev["blockNumber"]),
            tx_hash="0x" + bytes(ev["transactionHash"]).hex(),
        )

    def posted_in_receipt(self, receipt: Any) -> list[PostedAnswer]:
        """Decoded ``OptimisticAnswerPosted`` events of one receipt."""
        return [
            self._decode_posted(ev)
            for ev in self._posted.process_receipt(receipt, errors=DISCARD)
            if Web3.to_checksum_address(ev["address"]) == self.address
        ]

    def posted_logs(self, from_block: int, to_block: int) -> list[PostedAnswer]:
        """Optimistic answers posted in the range (any node)."""
        logs = self._posted.get_logs(from_block=from_block, to_block=to_block)
        return [self._decode_posted(ev) for ev in logs]

    def challenge_logs(self, from_block: int, to_block: int) -> list[Challenge]:
        """Challenges made in the range (against any node)."""
        return [
            Challenge(
                request_id=int(ev["args"]["requestId"]),
                challenger=Web3.to_checksum_address(ev["args"]["challenger"]),
                bond=int(ev["args"]["bond"]),
                block_number=int(ev["blockNumber"]),
            )
            for ev in self._challenged.get_logs(from_block=from_block, to_block=to_block)
        ]

    def slashing_of(self, request_id: int, from_block: int) -> dict[str, Any] | None:
        """The ``OptimisticAnswerSlashed`` of a request on the current chain, or None."""
        logs = self._slashed.get_logs(
            from_block=from_block, argument_filters={"requestId": request_id}
        )
        if not logs:
            return None
        args = logs[-1]["args"]
        return {
            "node": Web3.to_checksum_address(args["node"]),
            "challenger": Web3.to_checksum_address(args["challenger"]),
            "slashed": int(args["slashed"]),
            "to_challenger": int(args["toChallenger"]),
            "burned": int(args["burned"]),
            "block": int(logs[-1]["blockNumber"]),
        }

    def request_of(self, request_id: int, before_block: int) -> RequestStruct | None:
        """The request as committed when it was last opened at or before ``before_block``
        (from its ``InferenceRequested`` or ``RequestReopened`` log), or None."""
        found: list[RequestedEvent] = []
        for event, reopened in ((self._requested, False), (self._reopened, True)):
            for log in event.get_logs(
                from_block=0, to_block=before_block, argument_filters={"requestId": request_id}
            ):
                found.append(self._requested_event(log, reopened))
        if not found:
            return None
        return max(found, key=lambda e: (e.block_number, e.log_index)).as_request()

    def requested_in_receipt(self, receipt: Any) -> list[RequestStruct]:
        """The requests a receipt's ``InferenceRequested`` logs announced, as ``fulfill``
        takes them."""
        return [
            self._requested_event(ev, False).as_request()
            for ev in self._requested.process_receipt(receipt, errors=DISCARD)
            if Web3.to_checksum_address(ev["address"]) == self.address
        ]

    def model(self, model_id: str) -> dict[str, Any]:
        raw = self.contract.functions.getModel(bytes.fromhex(model_id.removeprefix("0x"))).call()
        keys = (
            "owner",
            "verifier",
            "input_length",
            "output_length",
            "input_scale",
            "output_scale",
            "exists",
            "onnx_hash",
            "verifier_code_hash",
        )
        info = dict(zip(keys, raw, strict=True))
        for key in ("onnx_hash", "verifier_code_hash"):
            info[key] = "0x" + bytes(info[key]).hex()
        return info

    def quote_fee(self, model_id: str, mode: int, callback_gas_limit: int) -> int:
        return int(
            self.contract.functions.quoteFee(
                bytes.fromhex(model_id.removeprefix("0x")), mode, callback_gas_limit
            ).call()
        )

    # -- writing ---------------------------------------------------------------------
    def fulfill_calldata(
        self, req: RequestStruct, output: list[int], err: bytes, proof: bytes
    ) -> HexStr:
        """ABI-encoded ``fulfill(req, output, err, proof)`` call data."""
        return self.calls["fulfill"].calldata(req.as_tuple(), output, err, proof)

    def post_calldata(self, req: RequestStruct, output: list[int]) -> HexStr:
        """``postOptimistic(req, output)`` (send the bond as value)."""
        return self.calls["postOptimistic"].calldata(req.as_tuple(), output)

    def challenge_calldata(self, req: RequestStruct, claim: ClaimStruct) -> HexStr:
        """``challenge(req, claim)`` (send the challenger bond as value)."""
        return HexStr(
            self.contract.encode_abi("challenge", args=[req.as_tuple(), claim.as_tuple()])
        )

    def prove_calldata(self, req: RequestStruct, claim: ClaimStruct, proof: bytes) -> HexStr:
        """``proveOptimistic(req, claim, proof)``."""
        return self.calls["proveOptimistic"].calldata(req.as_tuple(), claim.as_tuple(), proof)

    def finalize_calldata(self, req: RequestStruct, claim: ClaimStruct) -> HexStr:
        """``finalize(req, claim)``."""
        return self.calls["finalize"].calldata(req.as_tuple(), claim.as_tuple())
