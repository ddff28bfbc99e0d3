"""Fast encoding of the Coordinator's calls and decoding of its logs, straight from the ABI
with ``eth_abi``.

web3's ``process_log`` costs about a millisecond a log (and raises, slowly, on a log of
another event), and its ``encode_abi`` several milliseconds a call (it validates and
normalises every argument): a burst of requests brings hundreds of logs per poll, a batch
hundreds of answers. :class:`EventCodec` decodes one event's logs in a tenth of that, with
the same argument names and values (addresses checksummed, ``bytesN`` as bytes, arrays as
tuples); :class:`CallCodec` encodes one function's call data, byte for byte what web3
gives for the same arguments (tests/unit/test_codec.py checks both).
"""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_typing import HexStr
from web3 import Web3

from oracle.chain.artifacts import abi_type


class EventCodec:
    """Decodes the logs of one event of a contract ABI."""

    def __init__(self, abi: list[dict[str, Any]], name: str) -> None:
        item = next(i for i in abi if i.get("type") == "event" and i.get("name") == name)
        inputs = item["inputs"]
        types = ",".join(abi_type(i) for i in inputs)
        self.name = name
        self.topic: bytes = bytes(Web3.keccak(text=f"{name}({types})"))
        self._indexed = [(i["name"], abi_type(i)) for i in inputs if i["indexed"]]
        self._data_names = [i["name"] for i in inputs if not i["indexed"]]
        self._data_types = [abi_type(i) for i in inputs if not i["indexed"]]

    def matches(self, log: Any) -> bool:
        topics = log["topics"]
        return bool(topics) and bytes(topics[0]) == self.topic

    def args(self, log: Any) -> dict[str, Any]:
        """The event's arguments by name (the log must match: see :meth:`matches`)."""
        out: dict[str, Any] = {}
        for (name, kind), topic in zip(self._indexed, log["topics"][1:], strict=True):
            out[name] = _clean(kind, abi_decode([kind], bytes(topic))[0])
        data = log["data"]
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        for name, kind, value in zip(
            self._data_names, self._data_types, abi_decode(self._data_types, raw), strict=True
        ):
            out[name] = _clean(kind, value)
        return out

    def in_receipt(self, receipt: Any, address: str) -> list[dict[str, Any]]:
        """Arguments of every log of this event emitted by ``address`` in a receipt."""
        return [
            self.args(log)
            for log in receipt["logs"]
            if self.matches(log) and Web3.to_checksum_address(log["address"]) == address
        ]


def _clean(kind: str, value: Any) -> Any:
    if kind == "address":
        return Web3.to_checksum_address(value)
    return value


class CallCodec:
    """Encodes the call data of one function of a contract ABI."""

    def __init__(self, abi: list[dict[str, Any]], name: str) -> None:
        item = next(i for i in abi if i.get("type") == "function" and i.get("name") == name)
        self._types = [abi_type(i) for i in item["inputs"]]
        self.selector: bytes = bytes(Web3.keccak(text=f"{name}({','.join(self._types)})"))[:4]

    def calldata(self, *args: Any) -> HexStr:
        """``0x``-prefixed call data for ``args`` (tuples for structs, hex strings or bytes
        for addresses and ``bytesN``)."""
        return HexStr("0x" + (self.selector + abi_encode(self._types, args)).hex())
