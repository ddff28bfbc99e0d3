"""The node's Prometheus metrics, read at scrape time from the database and the chain.

Workers are separate Celery processes, so an in-process counter in the node would miss
their work: every request and transaction figure here is read from the rows when
Prometheus scrapes ``/metrics``, which is right however many processes wrote them. What
only the node process knows (its health verdict, the reorgs its listener handled) and
what only the chain knows (the head, the signer's balance and nonce) are read then too.

Latency histograms are derived from the rows' timestamps over a recent window
(:attr:`MetricsSettings.latency_window_s`, one hour by default): a bucket counts the
requests that finished that stage inside the window, so it can go down. Query them without
``rate()``: ``histogram_quantile(0.95, sum by (le) (oracle_request_duration_seconds_bucket))``.

A failed read never fails the scrape: ``oracle_database_up`` / ``oracle_chain_rpc_up`` say
which source was unreadable and its metrics are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Text, cast, func, select
from web3 import Web3

from oracle.db import ChainCursor, Database, Transaction
from oracle.db.models import utcnow
from oracle.node.health import HealthReport, HealthState
from oracle.node.metrics_latency import latency_families
from oracle.node.metrics_optimistic import optimistic_families
from oracle.node.metrics_requests import request_families
from oracle.types import HealthCode, TxStatus

log = structlog.get_logger(__name__)


METRIC_NAMES: dict[str, str] = {
    # the node process
    "oracle_healthy": "gauge",
    "oracle_health_state": "gauge",
    "oracle_health_problem": "gauge",
    "oracle_reorgs": "counter",
    "oracle_relayer_retrying_answers": "gauge",
    "oracle_prover_memory_limit_bytes": "gauge",
    # the database
    "oracle_database_up": "gauge",
    "oracle_requests": "gauge",
    "oracle_requests_seen": "counter",
    "oracle_error_answers": "counter",
    "oracle_abandoned_requests": "counter",
    "oracle_pending_request_max_age_seconds": "gauge",
    "oracle_request_duration_seconds": "histogram",
    "oracle_request_stage_duration_seconds": "histogram",
    "oracle_request_fulfil_blocks": "histogram",
    "oracle_transactions": "gauge",
    "oracle_pending_transactions": "gauge",
    "oracle_signer_next_nonce": "gauge",
    "oracle_fee_bumps": "counter",
    "oracle_listener_block": "gauge",
    "oracle_listener_halted": "gauge",
    "oracle_listener_lag_blocks": "gauge",
    "oracle_optimistic_bonds_at_risk_wei": "gauge",
    "oracle_optimistic_open_challenges": "gauge",
    "oracle_optimistic_slashed_answers": "counter",
    "oracle_watcher_bonds_at_risk_wei": "gauge",
    "oracle_watcher_answers": "gauge",
    # the chain
    "oracle_chain_rpc_up": "gauge",
    "oracle_chain_head_block": "gauge",
    "oracle_signer_balance_wei": "gauge",
    "oracle_signer_chain_nonce": "gauge",
}
"""Every metric family the collector exports (counters without their ``_total``)."""

_SUFFIXES = {"gauge": ("",), "counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def series_names() -> set[str]:
    """The names a query can use: ``oracle_reorgs_total``, ``..._seconds_bucket`` and so on."""
    return {name + sfx for name, kind in METRIC_NAMES.items() for sfx in _SUFFIXES[kind]}


PENDING_TX = (TxStatus.SIGNED, TxStatus.BROADCAST, TxStatus.MINED)


@dataclass(frozen=True)
class ChainReading:
    head: int
    balance_wei: int
    nonce: int  # transactions of the signer's mined in the latest block


class ChainProbe(Protocol):
    def read(self, signer: str) -> ChainReading: ...


class Web3Probe:
    """Reads the head, the signer's balance and its mined nonce over its own connection."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def read(self, signer: str) -> ChainReading:
        address = self.w3.to_checksum_address(signer)
        return ChainReading(
            head=int(self.w3.eth.block_number),
            balance_wei=int(self.w3.eth.get_balance(address)),
            nonce=int(self.w3.eth.get_transaction_count(address, "latest")),
        )


@dataclass
class NodeView:
    """What the collector reads at scrape time. Only ``db`` is required."""

    db: Database
    chain_id: int | None = None
    coordinator: str | None = None
    signer: str | None = None
    probe: ChainProbe | None = None
    health: Callable[[], HealthReport] | None = None
    retrying: Callable[[], Mapping[str, int]] | None = None  # reason -> answers (relayer)
    reorgs_seen: Callable[[], int] | None = None
    prover_memory_limit_bytes: int | None = None
    latency_window_s: float = 3600.0
    now: Callable[[], datetime] = field(default=utcnow)


class NodeCollector(Collector):
    """A prometheus_client collector over :class:`NodeView`, built lazily per scrape."""

    def __init__(self, view: Callable[[], NodeView]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        view = self._view()
        reading = self._read_chain(view)
        yield from self._node(view)
        db_up = GaugeMetricFamily("oracle_database_up", "1 when the database was readable")
        try:
            families = list(self._database(view, reading))
        except Exception as exc:  # the scrape still answers, saying what it could not read
            log.warning("metrics.database_unreadable", error=type(exc).__name__)
            families = []
        db_up.add_metric([], 1.0 if families else 0.0)
        yield db_up
        yield from families
        yield from self._chain(view, reading)

    # -- the node process ------------------------------------------------------------
    def _node(self, view: NodeView) -> Iterable[Metric]:
        labels = ["chain_id", "coordinator"]
        values = [str(view.chain_id or ""), view.coordinator or ""]
        if view.health is not None:
            report = view.health()
            healthy = GaugeMetricFamily(
                "oracle_healthy", "1 when /healthz answers 200", labels=labels
            )
            healthy.add_metric(values, 1.0 if report.healthy else 0.0)
            yield healthy
            state = GaugeMetricFamily(
                "oracle_health_state",
                "1 for the node's health state (healthy 200, degraded 206, down 503)",
                labels=[*labels, "state"],
            )
            for s in HealthState:
                state.add_metric([*values, s.value], 1.0 if report.state is s else 0.0)
            yield state
            problem = GaugeMetricFamily(
                "oracle_health_problem",
                "1 while a part of the node reports this health code",
                labels=[*labels, "code"],
            )
            codes = {p.code for p in report.problems}
            for code in HealthCode:
                problem.add_metric([*values, code.value], 1.0 if code in codes else 0.0)
            yield problem
        if view.retrying is not None:
            retrying = GaugeMetricFamily(
                "oracle_relayer_retrying_answers",
                "Answers whose simulation failed, waiting to be tried again, by reason "
                "(out_of_gas, or the revert: NotAssignedNode, NotActiveNode, ...)",
                labels=[*labels, "reason"],
            )
            for reason, n in sorted(view.retrying().items()):
                retrying.add_metric([*values, reason], float(n))
            yield retrying
        if view.reorgs_seen is not None:
            reorgs = CounterMetricFamily(
                "oracle_reorgs", "Reorgs the listener handled since start", labels=labels
            )
            reorgs.add_metric(values, float(view.reorgs_seen()))
            yield reorgs
        if view.prover_memory_limit_bytes is not None:
            limit = GaugeMetricFamily(
                "oracle_prover_memory_limit_bytes",
                "Prover memory budget onboarding refuses circuits past (zk.max_prover_memory_mb)",
            )
            limit.add_metric([], float(view.prover_memory_limit_bytes))
            yield limit

    # -- the database ----------------------------------------------------------------
    def _database(self, view: NodeView, reading: ChainReading | None) -> Iterator[Metric]:
        with view.db.session() as s:
            yield from request_families(s, view)
            yield from latency_families(s, view)
            yield from self._transactions(s)
            yield from self._cursors(s, view, reading)
            yield from optimistic_families(s)

    def _transactions(self, s: Any) -> Iterator[Metric]:
        labels = ["chain_id", "signer"]
        by_status = GaugeMetricFamily(
            "oracle_transactions", "Signed transactions by status", labels=[*labels, "status"]
        )
        pending = GaugeMetricFamily(
            "oracle_pending_transactions",
            "Transactions signed but not yet confirmed, reverted or dropped",
            labels=labels,
        )
        pending_n: dict[tuple[str, str], int] = defaultdict(int)
        q = select(Transaction.chain_id, Transaction.sender, Transaction.status, func.count())
        q = q.group_by(Transaction.chain_id, Transaction.sender, Transaction.status)
        for chain_id, sender, status, n in s.execute(q):
            by_status.add_metric([str(chain_id), sender, status], float(n))
            pending_n[(str(chain_id), sender)] += int(n) if status in PENDING_TX else 0
        for key, n in sorted(pending_n.items()):
            pending.add_metric(list(key), float(n))
        yield by_status
        yield pending

        next_nonce = GaugeMetricFamily(
            "oracle_signer_next_nonce", "The nonce the relayer signs next", labels=labels
        )
        q2 = select(Transaction.chain_id, Transaction.sender, func.max(Transaction.nonce))
        for chain_id, sender, top in s.execute(
            q2.group_by(Transaction.chain_id, Transaction.sender)
        ):
            next_nonce.add_metric([str(chain_id), sender], float(int(top) + 1))
        yield next_nonce

        bumps = CounterMetricFamily(
            "oracle_fee_bumps", "Fee bumps: hashes a resend replaced", labels=labels
        )
        bump_n: dict[tuple[str, str], int] = defaultdict(int)
        for key in pending_n:
            bump_n[key] = 0
        # Only rows a bump touched are decoded (an unbumped row holds SQL or JSON null).
        q3 = select(Transaction.chain_id, Transaction.sender, Transaction.replaced_hashes).where(
            Transaction.replaced_hashes.is_not(None),
            cast(Transaction.replaced_hashes, Text) != "null",
        )
        for chain_id, sender, replaced in s.execute(q3):
            bump_n[(str(chain_id), sender)] += len(replaced or [])
        for key, n in sorted(bump_n.items()):
            bumps.add_metric(list(key), float(n))
        yield bumps

    def _cursors(self, s: Any, view: NodeView, reading: ChainReading | None) -> Iterator[Metric]:
        labels = ["chain_id", "coordinator"]
        block = GaugeMetricFamily(
            "oracle_listener_block", "Last block the listener read", labels=labels
        )
        halted = GaugeMetricFamily(
            "oracle_listener_halted",
            "1 when a reorg deeper than finality halted the listener",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "oracle_listener_lag_blocks",
            "Chain head minus the listener's block (includes the confirmation depth)",
            labels=labels,
        )
        head = reading.head if reading is not None else None
        for c in s.scalars(select(ChainCursor)):
            values = [str(c.chain_id), c.coordinator]
            block.add_metric(values, float(c.block_number))
            halted.add_metric(values, 1.0 if c.halted_reason else 0.0)
            if head is not None and c.chain_id == view.chain_id:
                lag.add_metric(values, float(max(head - c.block_number, 0)))
        yield block
        yield halted
        yield lag

    # -- the chain -------------------------------------------------------------------
    def _read_chain(self, view: NodeView) -> ChainReading | None:
        if view.probe is None or view.signer is None:
            return None
        try:
            return view.probe.read(view.signer)
        except Exception as exc:  # an unreachable RPC must not fail the scrape
            log.warning("metrics.chain_unreadable", error=type(exc).__name__)
            return None

    def _chain(self, view: NodeView, reading: ChainReading | None) -> Iterator[Metric]:
        if view.probe is None or view.signer is None:
            return
        chain = [str(view.chain_id or "")]
        up = GaugeMetricFamily(
            "oracle_chain_rpc_up", "1 when the chain's RPC answered", labels=["chain_id"]
        )
        up.add_metric(chain, 1.0 if reading is not None else 0.0)
        yield up
        if reading is None:
            return
        signer = [*chain, view.signer]
        head = GaugeMetricFamily("oracle_chain_head_block", "Chain head", labels=["chain_id"])
        head.add_metric(chain, float(reading.head))
        yield head
        balance = GaugeMetricFamily(
            "oracle_signer_balance_wei", "The signer's balance", labels=["chain_id", "signer"]
        )
        balance.add_metric(signer, float(reading.balance_wei))
        yield balance
        nonce = GaugeMetricFamily(
            "oracle_signer_chain_nonce",
            "The signer's nonce in the latest block (next_nonce minus this: not yet mined)",
            labels=["chain_id", "signer"],
        )
        nonce.add_metric(signer, float(reading.nonce))
        yield nonce
