"""The gas an answer is allowed: computed from what it carries, never one constant for all.

An answer (``fulfill``, or one item of ``fulfillBatch``) costs the Coordinator work that
grows with the request's input (the commitment ``keccak256(abi.encode(req))`` copies and
hashes it; a batch item re-encodes it for its inner call), the output (decoded, copied into
the callback's payload, logged in ``InferenceFulfilled`` at 8 gas a byte), the error text and
the proof (copied and, in Zk mode, checked with up to ``VERIFIER_GAS_LIMIT``), plus the
callback gas the consumer asked for, which the exact-gas check needs available *before* the
call (``64/63`` of it plus a margin) and which a consumer's callback may burn entirely, after
which the event must still be paid for. Memory grows with every copy and costs
``3 * words + words**2 / 512``: that term is what makes a 1,000-element answer more than a
thousand times a one-element answer's per-element cost.

The per-element figures below are measured on the real Coordinator by ``bench/answer_gas.py``
(input and output lengths from 1 to 1,000, plain and error answers, a callback that burns all
its gas) and rounded up; ``tests/integration/test_answer_gas.py`` fails if any measured need
exceeds the allowance, so a Coordinator change that makes answers dearer cannot go unnoticed.
Transaction-level costs are computed exactly from the encoded call data, not estimated:
intrinsic gas, call data at 16 / 4 gas a byte, and EIP-7623's floor (Prague: a transaction
pays at least 10 gas per call-data token, 40 a non-zero byte), which is what a 1,000-element
answer pays, not its execution.

What this module does not guarantee is that an allowance suffices for a Coordinator other
than this repository's: the broadcaster simulates every transaction at the gas limit it will
carry and, when an answer runs short anyway, retries it alone with more gas up to
``relayer.max_answer_gas`` (:mod:`oracle.relayer.retries`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import HexStr

from oracle.chain.batch import calldata_gas
from oracle.db import InferenceRequest
from oracle.types import Mode

TX_BASE_GAS = 21_000
# The batch's own work: reentrancy lock, active-node check, the loop (measured; rounded up).
BATCH_BASE_GAS = 40_000
# The Coordinator's constants the allowance follows (solidity/src/Coordinator.sol).
VERIFIER_GAS_LIMIT = 1_500_000
CALLBACK_GAS_MARGIN = 5_000
BATCH_ITEM_RESERVE = 30_000

# Per answer, whatever its size: commitment read and delete, assignment, balances, the
# callback's call, the event's topics, and in a batch the item's own external call.
ANSWER_FIXED_GAS = 30_000
# Linear work per 32-byte word (copies at 3 gas a word and their ABI checks, keccak at 6 a
# word, log data at 256 a word for the output), measured and rounded up.
GAS_PER_INPUT_WORD = 120
GAS_PER_OUTPUT_WORD = 460
GAS_PER_BYTES_WORD = 350  # the error text and the proof (copied, logged for the error)
# Memory words an answer occupies at its largest, per element: the input is copied for the
# commitment and for a batch item's call; the output is decoded, copied into the payload and
# into the event's data, and re-encoded for a batch item's call.
MEMORY_WORDS_PER_INPUT = 3
MEMORY_WORDS_PER_OUTPUT = 5
MEMORY_WORDS_PER_BYTES_WORD = 4
MEMORY_WORDS_FIXED = 64


@dataclass(frozen=True)
class AnswerShape:
    """What an answer carries, as far as its gas is concerned."""

    input_length: int
    output_length: int
    err_length: int
    proof_length: int
    callback_gas: int
    zk: bool  # a proof the verifier checks (a Zk answer that is not an error)

    @classmethod
    def of(cls, row: InferenceRequest, err: bytes, proof: bytes) -> AnswerShape:
        """The shape of ``row``'s ``fulfill`` answer with error text ``err`` and ``proof``."""
        output_length = 0 if err else len(row.output or [])
        return cls(
            input_length=len(row.input or []),
            output_length=output_length,
            err_length=len(err),
            proof_length=len(proof),
            callback_gas=int(row.callback_gas_limit),
            zk=row.mode == Mode.ZK and not err,
        )


def _words(n_bytes: int) -> int:
    return (n_bytes + 31) // 32


def memory_gas(words: int) -> int:
    """The EVM's cost of ``words`` words of memory (linear plus quadratic)."""
    return 3 * words + words * words // 512


def answer_gas(shape: AnswerShape) -> int:
    """Gas one answer is allowed inside a ``fulfillBatch`` (and, plus :data:`BATCH_BASE_GAS`,
    on its own): the Coordinator's work for what it carries, its memory, the callback gas
    as the exact-gas check needs it, and the verifier's cap for a proof."""
    bytes_words = _words(shape.err_length) + _words(shape.proof_length)
    linear = (
        ANSWER_FIXED_GAS
        + GAS_PER_INPUT_WORD * shape.input_length
        + GAS_PER_OUTPUT_WORD * shape.output_length
        + GAS_PER_BYTES_WORD * bytes_words
    )
    memory = memory_gas(
        MEMORY_WORDS_FIXED
        + MEMORY_WORDS_PER_INPUT * shape.input_length
        + MEMORY_WORDS_PER_OUTPUT * shape.output_length
        + MEMORY_WORDS_PER_BYTES_WORD * bytes_words
    )
    callback = shape.callback_gas * 64 // 63 + CALLBACK_GAS_MARGIN + 2 * BATCH_ITEM_RESERVE
    verifier = VERIFIER_GAS_LIMIT if shape.zk else 0
    return linear + memory + callback + verifier


def calldata_floor_gas(data: HexStr) -> int:
    """EIP-7623's least gas for a transaction with call data ``data``: 21,000 plus 10 per
    token (a zero byte is one token, a non-zero byte four)."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    zeros = raw.count(0)
    return TX_BASE_GAS + 10 * (zeros + 4 * (len(raw) - zeros))


def encoded_words(shape: AnswerShape) -> int:
    """Words of one ``Answer`` ABI-encoded (the request struct, output, error, proof)."""
    fixed = 24  # the request's static fields, offsets and lengths
    return (
        fixed
        + shape.input_length
        + shape.output_length
        + _words(shape.err_length)
        + _words(shape.proof_length)
    )


def batch_memory_gas(shapes: list[AnswerShape]) -> int:
    """``fulfillBatch`` encodes each item into its own memory for the item's call and never
    frees it: its memory grows with the batch, and is paid for quadratically."""
    if len(shapes) < 2:
        return 0
    return memory_gas(sum(encoded_words(s) for s in shapes))


def planned_transaction_gas(shapes: list[AnswerShape]) -> int:
    """An upper bound of :func:`transaction_gas` before the call data is encoded (every
    byte counted non-zero), for cutting batches within a budget."""
    data_bytes = 4 + 64 + sum(32 + 32 * encoded_words(s) for s in shapes)
    execution = BATCH_BASE_GAS + sum(answer_gas(s) for s in shapes) + batch_memory_gas(shapes)
    return max(TX_BASE_GAS + 16 * data_bytes + execution, TX_BASE_GAS + 40 * data_bytes)


def transaction_gas(shapes: list[AnswerShape], data: HexStr) -> int:
    """The gas limit of a transaction carrying call data ``data`` that answers ``shapes``
    (one ``fulfill`` or a ``fulfillBatch``): its execution allowance plus call data, or
    EIP-7623's floor where that is more."""
    execution = BATCH_BASE_GAS + sum(answer_gas(s) for s in shapes) + batch_memory_gas(shapes)
    return max(TX_BASE_GAS + calldata_gas(data) + execution, calldata_floor_gas(data))
