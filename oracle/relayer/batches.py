"""How ready answers are grouped into ``fulfillBatch`` transactions, and the gas each carries.

Every answer is allowed the gas its shape needs (:mod:`oracle.relayer.gas`: input, output,
error, proof, callback gas); a batch closes at ``batch_max_items`` answers or when the next
answer would take it past ``batch_gas_budget`` (an answer that alone needs more than the
budget goes alone). The transaction's gas limit is computed from the call data it carries
and what its answers are allowed: a batch is simulated at that limit, so an answer the limit
could not cover shows as rejected before anything is signed. (A gas *estimate* cannot be
used: a batch short of gas does not revert, it rejects answers.)
"""

from __future__ import annotations

from eth_typing import HexStr

from oracle.chain.batch import MAX_BATCH_ITEMS
from oracle.db import InferenceRequest
from oracle.relayer.attempts import answer_err, answer_proof
from oracle.relayer.gas import AnswerShape, planned_transaction_gas, transaction_gas
from oracle.settings import RelayerSettings


def shape_of(row: InferenceRequest) -> AnswerShape:
    """The shape of ``row``'s ``fulfill`` answer as it will be sent."""
    return AnswerShape.of(row, answer_err(row), answer_proof(row))


def within_cap(row: InferenceRequest, relayer: RelayerSettings) -> bool:
    """Whether ``row``'s answer alone fits ``relayer.max_answer_gas`` (one that does not
    never joins a batch: it goes alone, where the cap decides what becomes of it)."""
    return planned_transaction_gas([shape_of(row)]) <= relayer.max_answer_gas


def smallest_first(rows: list[InferenceRequest]) -> list[InferenceRequest]:
    """``rows`` by the gas their answers need, least first (oldest first among equals): the
    round's first transactions, with the lowest nonces, carry the ordinary answers, so a
    block that cannot hold every answer of a burst leaves the large ones for the next."""
    return sorted(rows, key=lambda row: planned_transaction_gas([shape_of(row)]))


def plan_batches(
    rows: list[InferenceRequest], relayer: RelayerSettings
) -> list[list[InferenceRequest]]:
    """``rows`` in order, cut into batches within the item and gas limits."""
    most = min(relayer.batch_max_items, MAX_BATCH_ITEMS)
    batches: list[list[InferenceRequest]] = []
    current: list[InferenceRequest] = []
    shapes: list[AnswerShape] = []
    for row in rows:
        shape = shape_of(row)
        if current and (
            len(current) >= most
            or planned_transaction_gas([*shapes, shape]) > relayer.batch_gas_budget
        ):
            batches.append(current)
            current, shapes = [], []
        current.append(row)
        shapes.append(shape)
    if current:
        batches.append(current)
    return batches


def batch_gas_limit(rows: list[InferenceRequest], data: HexStr) -> int:
    """The gas limit of a transaction carrying ``data`` that answers ``rows``."""
    return transaction_gas([shape_of(row) for row in rows], data)
