"""How ready answers are grouped into ``fulfillBatch`` transactions, and the gas each carries.

Every answer is allowed its callback gas plus ``batch_item_gas`` (and ``batch_zk_item_gas``
for a proof to check); a batch closes at ``batch_max_items`` answers or when the next answer
would take it past ``batch_gas_budget``. The transaction's gas limit is the sum of what its
answers are allowed, plus the transaction's own intrinsic gas: a batch is simulated at that
limit, so an answer the limit could not cover shows as rejected before anything is signed.
(A gas *estimate* cannot be used: a batch short of gas does not revert, it rejects answers.)
"""

from __future__ import annotations

from eth_typing import HexStr

from oracle.chain.batch import MAX_BATCH_ITEMS, calldata_gas
from oracle.db import InferenceRequest
from oracle.settings import RelayerSettings
from oracle.types import Mode

TX_BASE_GAS = 21_000
BATCH_BASE_GAS = 40_000  # the batch's own work: reentrancy lock, active-node check, loop


def item_gas(row: InferenceRequest, relayer: RelayerSettings) -> int:
    """Gas one answer in a batch is allowed (its callback's, its checks, its proof)."""
    gas = int(row.callback_gas_limit) + relayer.batch_item_gas
    if row.mode == Mode.ZK and not row.error:
        gas += relayer.batch_zk_item_gas
    return gas


def plan_batches(
    rows: list[InferenceRequest], relayer: RelayerSettings
) -> list[list[InferenceRequest]]:
    """``rows`` in order, cut into batches within the item and gas limits."""
    most = min(relayer.batch_max_items, MAX_BATCH_ITEMS)
    budget = relayer.batch_gas_budget - TX_BASE_GAS - BATCH_BASE_GAS
    batches: list[list[InferenceRequest]] = []
    current: list[InferenceRequest] = []
    used = 0
    for row in rows:
        gas = item_gas(row, relayer)
        if current and (len(current) >= most or used + gas > budget):
            batches.append(current)
            current, used = [], 0
        current.append(row)
        used += gas
    if current:
        batches.append(current)
    return batches


def batch_gas_limit(rows: list[InferenceRequest], data: HexStr, relayer: RelayerSettings) -> int:
    """The gas limit of a batch transaction carrying ``data`` for ``rows``."""
    items = sum(item_gas(row, relayer) for row in rows)
    return TX_BASE_GAS + calldata_gas(data) + BATCH_BASE_GAS + items
