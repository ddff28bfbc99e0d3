"""Optimistic-mode figures for ``/metrics``, read from the database at scrape time: our
posted answers (bonds at risk, challenges against them, slashings) and the watcher's rows
(bonds it has at risk, answers by verdict). See :mod:`oracle.node.metrics`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import select

from oracle.db import InferenceRequest, Watch
from oracle.types import RequestStatus, WatchStatus


def optimistic_families(s: Any) -> Iterator[Metric]:
    """Our posted optimistic answers (their bonds, challenges against them, slashings) and
    the watcher's challenges (bonds it has at risk, answers it checked by verdict)."""
    labels = ["chain_id", "coordinator"]
    at_risk = GaugeMetricFamily(
        "oracle_optimistic_bonds_at_risk_wei",
        "Bonds of our optimistic answers posted and not yet resolved",
        labels=labels,
    )
    challenged = GaugeMetricFamily(
        "oracle_optimistic_open_challenges",
        "Our optimistic answers under challenge, not yet proven or slashed",
        labels=labels,
    )
    slashed = CounterMetricFamily(
        "oracle_optimistic_slashed_answers",
        "Our optimistic answers slashed (not proven in time)",
        labels=labels,
    )
    resolved = (
        RequestStatus.CONFIRMED.value,
        RequestStatus.SLASHED.value,
        RequestStatus.ABANDONED.value,
        RequestStatus.CANCELLED.value,
        RequestStatus.REORGED.value,
    )
    q = select(
        InferenceRequest.chain_id,
        InferenceRequest.coordinator,
        InferenceRequest.status,
        InferenceRequest.claim_bond,
        InferenceRequest.challenger,
    ).where(InferenceRequest.claim_node.is_not(None))
    bonds: dict[tuple[str, str], int] = defaultdict(int)
    disputes: dict[tuple[str, str], int] = defaultdict(int)
    lost: dict[tuple[str, str], int] = defaultdict(int)
    for chain_id, coordinator, status, bond, challenger in s.execute(q):
        key = (str(chain_id), coordinator)
        if status == RequestStatus.SLASHED.value:
            lost[key] += 1
        if status in resolved:
            continue
        bonds[key] += int(bond or 0)
        if challenger is not None:
            disputes[key] += 1
    for key in sorted({*bonds, *lost}):
        at_risk.add_metric(list(key), float(bonds[key]))
        challenged.add_metric(list(key), float(disputes[key]))
        slashed.add_metric(list(key), float(lost[key]))
    yield at_risk
    yield challenged
    yield slashed

    watcher_risk = GaugeMetricFamily(
        "oracle_watcher_bonds_at_risk_wei",
        "Challenger bonds the watcher has in open challenges",
        labels=labels,
    )
    watched = GaugeMetricFamily(
        "oracle_watcher_answers",
        "Optimistic answers the watcher checked, by verdict and status",
        labels=[*labels, "verdict", "status"],
    )
    open_watch = (WatchStatus.CHALLENGING.value, WatchStatus.CHALLENGED.value)
    wq = select(
        Watch.chain_id,
        Watch.coordinator,
        Watch.verdict,
        Watch.status,
        Watch.challenger_bond,
    )
    risk: dict[tuple[str, str], int] = defaultdict(int)
    by_verdict: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for chain_id, coordinator, verdict, status, bond in s.execute(wq):
        key = (str(chain_id), coordinator)
        by_verdict[(*key, verdict, status)] += 1
        risk[key] += int(bond or 0) if status in open_watch else 0
    for key, wei in sorted(risk.items()):
        watcher_risk.add_metric(list(key), float(wei))
    for vkey, n in sorted(by_verdict.items()):
        watched.add_metric(list(vkey), float(n))
    yield watcher_risk
    yield watched
