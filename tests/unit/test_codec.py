"""The fast codecs give what web3 gives: the log decoder what ``process_log`` gives, for every
event the node decodes in bulk, on logs built from the ABI (indexed arguments in topics, the
rest in data); the call encoder what ``encode_abi`` gives, for every call the relayer sends."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode
from web3 import Web3

from oracle.chain.artifacts import abi_type, load_artifact
from oracle.chain.batch import BatchAnswer
from oracle.chain.client import RequestStruct
from oracle.chain.codec import CallCodec, EventCodec
from oracle.chain.optimistic import ClaimStruct

ADDRESS = Web3.to_checksum_address("0x" + "11" * 20)
VALUES: dict[str, Any] = {
    "uint256": 2**200 + 7,
    "bytes32": b"\x22" * 32,
    "address": "0x" + "3a" * 20,
    "int256[]": [-5, 0, 2**100],
    "uint8": 2,
    "uint32": 300_000,
    "uint64": 12345,
    "bool": True,
    "bytes": b"\x08\xc3\x79\xa0" + b"\x01" * 40,
}


def _log(item: dict[str, Any]) -> dict[str, Any]:
    types = [abi_type(i) for i in item["inputs"]]
    topic = Web3.keccak(text=f"{item['name']}({','.join(types)})")
    indexed = [abi_type(i) for i in item["inputs"] if i["indexed"]]
    data = [abi_type(i) for i in item["inputs"] if not i["indexed"]]
    return {
        "address": ADDRESS,
        "topics": [topic, *(encode([t], [VALUES[t]]) for t in indexed)],
        "data": encode(data, [VALUES[t] for t in data]),
        "blockNumber": 5,
        "blockHash": b"\x01" * 32,
        "transactionHash": b"\x02" * 32,
        "logIndex": 3,
        "transactionIndex": 0,
        "removed": False,
    }


@pytest.mark.parametrize(
    "name",
    [
        "InferenceRequested",
        "RequestAssigned",
        "RequestReopened",
        "InferenceFulfilled",
        "AnswerRejected",
    ],
)
def test_fast_decoding_equals_web3s(name: str) -> None:
    abi = load_artifact("Coordinator").abi
    contract = Web3().eth.contract(address=ADDRESS, abi=abi)
    item = next(i for i in abi if i.get("type") == "event" and i.get("name") == name)
    log = _log(item)
    codec = EventCodec(abi, name)
    assert codec.matches(log)
    want = dict(getattr(contract.events, name)().process_log(log)["args"])
    got = codec.args(log)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert (list(got[key]) if isinstance(value, list | tuple) else got[key]) == (
            list(value) if isinstance(value, list | tuple) else value
        ), key
    other = EventCodec(abi, "RequestCancelled")
    assert not other.matches(log)
    receipt = {"logs": [log, {**log, "address": "0x" + "44" * 20}]}
    assert codec.in_receipt(receipt, ADDRESS) == [got]  # another contract's log is left out


def _request(i: int) -> RequestStruct:
    return RequestStruct(
        request_id=i,
        model_id="0x" + "ab" * 32,
        consumer="0x" + "3a" * 20,
        mode=1,
        callback_gas_limit=300_000,
        requested_at_block=77,
        fee=10**15 + i,
        input=(-(2**200), 0, i),
    )


def test_fast_call_encoding_equals_web3s() -> None:
    abi = load_artifact("Coordinator").abi
    contract = Web3().eth.contract(address=ADDRESS, abi=abi)
    claim = ClaimStruct(
        output=(-3, 2**100),
        node="0x" + "5b" * 20,
        bond=10**16,
        challenge_deadline=90,
        proof_deadline=100,
        challenger=None,
        challenger_bond=0,
    )
    req = _request(4).as_tuple()
    answers = [
        BatchAnswer(_request(i), (i, -i), b"" if i % 2 else b"bad", b"\x01" * (i * 40)).as_tuple()
        for i in range(3)
    ]
    cases: dict[str, list[Any]] = {
        "fulfill": [req, [7, -8], b"", b"\x09" * 100],
        "fulfillBatch": [answers],
        "postOptimistic": [req, [1, 2]],
        "finalize": [req, claim.as_tuple()],
        "proveOptimistic": [req, claim.as_tuple(), b"\x07" * 33],
    }
    for name, args in cases.items():
        assert CallCodec(abi, name).calldata(*args) == contract.encode_abi(name, args=args), name
