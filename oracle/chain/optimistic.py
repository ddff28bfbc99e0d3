"""Optimistic mode's on-chain values as typed Python: the ``ICoordinator.Claim`` struct a
posted answer commits to, the ``OptimisticAnswerPosted`` and ``AnswerChallenged`` logs, and
the Coordinator's ``OptimisticConfig``. :class:`oracle.chain.client.CoordinatorClient` reads
and encodes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3


@dataclass(frozen=True)
class ClaimStruct:
    """The ``ICoordinator.Claim`` struct: a posted optimistic answer (``challenger`` None until
    it is challenged)."""

    output: tuple[int, ...]
    node: str
    bond: int
    challenge_deadline: int
    proof_deadline: int
    challenger: str | None = None
    challenger_bond: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        zero = "0x" + "00" * 20
        return (
            list(self.output),
            Web3.to_checksum_address(self.node),
            self.bond,
            self.challenge_deadline,
            self.proof_deadline,
            Web3.to_checksum_address(self.challenger or zero),
            self.challenger_bond,
        )


@dataclass(frozen=True)
class PostedAnswer:
    """An ``OptimisticAnswerPosted`` log, decoded."""

    request_id: int
    node: ChecksumAddress
    output: tuple[int, ...]
    bond: int
    challenge_deadline: int
    proof_deadline: int
    block_number: int
    tx_hash: str

    def claim(self) -> ClaimStruct:
        return ClaimStruct(
            self.output, self.node, self.bond, self.challenge_deadline, self.proof_deadline
        )


@dataclass(frozen=True)
class Challenge:
    """An ``AnswerChallenged`` log, decoded."""

    request_id: int
    challenger: ChecksumAddress
    bond: int
    block_number: int


@dataclass(frozen=True)
class OptimisticConfig:
    """The Coordinator's optimistic-mode parameters (``optimisticConfig()``)."""

    challenge_window_blocks: int
    proof_window_blocks: int
    node_bond: int
    challenger_bond: int
    stake_slash: int
    proof_gas_price: int
    challenger_share_bps: int

    @property
    def enabled(self) -> bool:
        return self.challenge_window_blocks > 0
