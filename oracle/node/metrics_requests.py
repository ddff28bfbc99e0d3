"""Request figures for ``/metrics``, read from the database at scrape time: requests by
state and mode, error answers and abandoned requests by reason code, the age of the oldest
request in progress. See :mod:`oracle.node.metrics`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from oracle.db import InferenceRequest
from oracle.node.metrics_latency import aware, mode_name
from oracle.types import RequestStatus

if TYPE_CHECKING:
    from oracle.node.metrics import NodeView

IN_PROGRESS = (
    RequestStatus.SEEN,
    RequestStatus.QUEUED,
    RequestStatus.INFERRED,
    RequestStatus.PROVING,
    RequestStatus.PROVED,
    RequestStatus.SUBMITTED,
)

ERROR_REASONS: tuple[tuple[str, str], ...] = (
    ("bad input", "bad_input"),
    ("input is not exactly representable", "bad_input"),
    ("model failed", "model_failed"),
    ("model unavailable", "model_unavailable"),
    ("circuit unavailable", "circuit_unavailable"),
    ("proof failed", "proof_failed"),
    ("fulfil simulation reverted", "simulation_reverted"),
    ("fulfilment reverted on chain", "fulfil_reverted"),
    ("answer needs more gas", "answer_gas"),
    ("fulfil simulation failed", "simulation_failed"),
    ("expired", "expired"),
)


def error_reason(text: str | None) -> str:
    """A stable, low-cardinality code for a row's error text (its latest reason: the
    relayer appends its own after `` | ``)."""
    if not text:
        return "none"
    last = text.rsplit(" | ", 1)[-1].strip().lower()
    for prefix, code in ERROR_REASONS:
        if last.startswith(prefix):
            return code
    return "other"


def request_families(s: Any, view: NodeView) -> Iterator[Metric]:
    labels = ["chain_id", "coordinator"]
    by_state = GaugeMetricFamily(
        "oracle_requests", "Requests by state and mode", labels=[*labels, "state", "mode"]
    )
    seen = CounterMetricFamily(
        "oracle_requests_seen", "Requests the listener recorded", labels=[*labels, "mode"]
    )
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    q = select(
        InferenceRequest.chain_id,
        InferenceRequest.coordinator,
        InferenceRequest.status,
        InferenceRequest.mode,
        func.count(),
    ).group_by(
        InferenceRequest.chain_id,
        InferenceRequest.coordinator,
        InferenceRequest.status,
        InferenceRequest.mode,
    )
    for chain_id, coordinator, status, mode, n in s.execute(q):
        key = (str(chain_id), coordinator, mode_name(mode))
        by_state.add_metric([key[0], key[1], status, key[2]], float(n))
        totals[key] += int(n)
    for key, n in sorted(totals.items()):
        seen.add_metric(list(key), float(n))
    yield by_state
    yield seen

    failures = {
        RequestStatus.ERRORED.value: CounterMetricFamily(
            "oracle_error_answers",
            "Error answers confirmed on chain, by reason",
            labels=[*labels, "reason"],
        ),
        RequestStatus.ABANDONED.value: CounterMetricFamily(
            "oracle_abandoned_requests",
            "Requests the node gave up on, by reason",
            labels=[*labels, "reason"],
        ),
    }
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    fq = (
        select(
            InferenceRequest.chain_id,
            InferenceRequest.coordinator,
            InferenceRequest.status,
            InferenceRequest.error,
            func.count(),
        )
        .where(InferenceRequest.status.in_(tuple(failures)))
        .group_by(
            InferenceRequest.chain_id,
            InferenceRequest.coordinator,
            InferenceRequest.status,
            InferenceRequest.error,
        )
    )
    for chain_id, coordinator, status, error, n in s.execute(fq):
        counts[(status, str(chain_id), coordinator, error_reason(error))] += int(n)
    for (status, *rest), n in sorted(counts.items()):
        failures[status].add_metric(rest, float(n))
    yield from failures.values()

    oldest = GaugeMetricFamily(
        "oracle_pending_request_max_age_seconds",
        "Age of the oldest request still in progress (seen to submitted), since seen",
        labels=labels,
    )
    oq = (
        select(
            InferenceRequest.chain_id,
            InferenceRequest.coordinator,
            func.min(InferenceRequest.seen_at),
        )
        .where(InferenceRequest.status.in_([st.value for st in IN_PROGRESS]))
        .group_by(InferenceRequest.chain_id, InferenceRequest.coordinator)
    )
    now = view.now()
    for chain_id, coordinator, first in s.execute(oq):
        seen_at = aware(first)
        if seen_at is not None:
            age = (now - seen_at).total_seconds()
            oldest.add_metric([str(chain_id), coordinator], max(age, 0.0))
    yield oldest
