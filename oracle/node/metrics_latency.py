"""Latency histograms for ``/metrics``, derived at scrape time from the rows' timestamps over
a recent window (``metrics.latency_window_s``): a bucket counts the requests that finished
that stage inside the window, so it can go down. See :mod:`oracle.node.metrics`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client.core import HistogramMetricFamily, Metric
from sqlalchemy import or_, select

from oracle.db import InferenceRequest
from oracle.types import Mode

if TYPE_CHECKING:
    from oracle.node.metrics import NodeView

SECONDS_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
BLOCKS_BUCKETS: tuple[float, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 200)
STAGES = ("queue_wait", "inference", "proof", "relay")
"""``oracle_request_stage_duration_seconds{stage}``: waiting for a worker (queued until
inference started), inference, the EZKL proof (Zk mode), relay (answer ready until the
fulfilment was confirmed)."""
MAX_LATENCY_ROWS = 20_000
"""At most this many recent rows feed the latency histograms (newest first)."""


def mode_name(mode: int) -> str:
    try:
        return Mode(mode).name.lower()
    except ValueError:
        return str(mode)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class _Histograms:
    """Observations grouped by label values, turned into one HistogramMetricFamily."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = buckets
        self.values: dict[tuple[str, ...], list[float]] = defaultdict(list)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        self.values[labels].append(max(value, 0.0))

    def family(self, name: str, doc: str, label_names: list[str]) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=label_names)
        for labels, values in sorted(self.values.items()):
            cumulative = [(_le(b), float(sum(1 for v in values if v <= b))) for b in self.buckets]
            cumulative.append(("+Inf", float(len(values))))
            fam.add_metric(list(labels), cumulative, sum_value=sum(values))
        return fam


def _le(bound: float) -> str:
    return str(float(bound))


def latency_families(s: Any, view: NodeView) -> Iterator[Metric]:
    now = view.now()
    cutoff = now - timedelta(seconds=view.latency_window_s)
    r = InferenceRequest
    q = (
        select(
            r.chain_id,
            r.coordinator,
            r.mode,
            r.seen_at,
            r.queued_at,
            r.inferred_at,
            r.inference_s,
            r.proved_at,
            r.prove_s,
            r.confirmed_at,
            r.block_number,
            r.fulfilled_block,
        )
        .where(or_(r.confirmed_at >= cutoff, r.inferred_at >= cutoff, r.proved_at >= cutoff))
        .order_by(r.id.desc())
        .limit(MAX_LATENCY_ROWS)
    )
    end_to_end = _Histograms(SECONDS_BUCKETS)
    stages = _Histograms(SECONDS_BUCKETS)
    blocks = _Histograms(BLOCKS_BUCKETS)

    for row in s.execute(q):
        key = (str(row.chain_id), row.coordinator, mode_name(row.mode))
        seen_at, queued_at = aware(row.seen_at), aware(row.queued_at)
        inferred_at, proved_at = aware(row.inferred_at), aware(row.proved_at)
        confirmed_at = aware(row.confirmed_at)
        if inferred_at is not None and inferred_at >= cutoff and row.inference_s is not None:
            stages.observe((*key, "inference"), row.inference_s)
            if queued_at is not None:
                started = inferred_at - timedelta(seconds=row.inference_s)
                stages.observe((*key, "queue_wait"), (started - queued_at).total_seconds())
        if proved_at is not None and proved_at >= cutoff and row.prove_s is not None:
            stages.observe((*key, "proof"), row.prove_s)
        if confirmed_at is not None and confirmed_at >= cutoff:
            ready = proved_at or inferred_at
            if ready is not None:
                stages.observe((*key, "relay"), (confirmed_at - ready).total_seconds())
            if seen_at is not None:
                end_to_end.observe(key, (confirmed_at - seen_at).total_seconds())
            if row.fulfilled_block is not None:
                blocks.observe(key, float(row.fulfilled_block - row.block_number))
    labels = ["chain_id", "coordinator", "mode"]
    yield end_to_end.family(
        "oracle_request_duration_seconds",
        "Seen by the listener until the answer was confirmed (recent window)",
        labels,
    )
    yield stages.family(
        "oracle_request_stage_duration_seconds",
        "Time in one pipeline stage: queue_wait, inference, proof, relay (recent window)",
        [*labels, "stage"],
    )
    yield blocks.family(
        "oracle_request_fulfil_blocks",
        "Blocks from the request's block to its confirmed fulfilment (recent window)",
        labels,
    )
