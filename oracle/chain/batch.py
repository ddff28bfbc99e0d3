"""Batched fulfilment: ``fulfillBatch`` call data, its simulation, and what its receipt says
about each request.

``fulfillBatch`` applies each answer exactly as ``fulfill`` would, each on its own: a refused
answer emits ``AnswerRejected`` (with the revert data ``fulfill`` would have given) and never
reverts the others. The call returns a bit mask of the rejected items, so an ``eth_call``
tells which answers would land before anything is signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_typing import HexStr

from oracle.chain.artifacts import all_abis, decode_revert
from oracle.chain.client import CoordinatorClient, RequestStruct, RevertError

# The Coordinator's MAX_FULFIL_BATCH: the result is a 256-bit mask.
MAX_BATCH_ITEMS = 256


@dataclass(frozen=True)
class BatchAnswer:
    """One item of ``fulfillBatch``: what ``fulfill`` takes."""

    req: RequestStruct
    output: tuple[int, ...]
    err: bytes
    proof: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.req.as_tuple(), list(self.output), self.err, self.proof)


def batch_calldata(coordinator: CoordinatorClient, answers: list[BatchAnswer]) -> HexStr:
    """ABI-encoded ``fulfillBatch(answers)``."""
    if not 0 < len(answers) <= MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_ITEMS} answers, not {len(answers)}")
    return coordinator.calls["fulfillBatch"].calldata([a.as_tuple() for a in answers])


def rejected_items(result: bytes, size: int) -> list[int]:
    """Indexes of the rejected items, from ``fulfillBatch``'s returned mask."""
    (mask,) = abi_decode(["uint256"], result)
    return [i for i in range(size) if mask >> i & 1]


def calldata_gas(data: HexStr) -> int:
    """The intrinsic gas of call data (EIP-2028: 16 per non-zero byte, 4 per zero byte)."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    zeros = raw.count(0)
    return 4 * zeros + 16 * (len(raw) - zeros)


def rejected_in_receipt(
    coordinator: CoordinatorClient, receipt: Any
) -> dict[int, RevertError | None]:
    """Request id -> why its answer was rejected (None when it ran out of gas, no data), for
    every ``AnswerRejected`` in a receipt."""
    out: dict[int, RevertError | None] = {}
    rejected = coordinator.codecs["AnswerRejected"].in_receipt(receipt, coordinator.address)
    abis = all_abis() if rejected else ()  # read once per receipt, only when needed
    for args in rejected:
        reason = bytes(args["reason"])
        decoded = decode_revert(reason, abis) if reason else None
        out[int(args["requestId"])] = (
            RevertError(decoded[0], decoded[1], reason) if decoded is not None else None
        )
    return out
