"""The /metrics collector against a real, migrated SQLite database with rows written
through the models: each figure is checked against the rows that should produce it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from oracle.db import ChainCursor, Database, InferenceRequest, Transaction, Watch
from oracle.node.health import HealthProblem, HealthReport
from oracle.node.metrics import (
    METRIC_NAMES,
    ChainReading,
    NodeCollector,
    NodeView,
)
from oracle.node.metrics_requests import error_reason
from oracle.types import HealthCode, Mode, RequestStatus, TxStatus

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COORD = "0x" + "c" * 40
SIGNER = "0x" + "5" * 40


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


class Probe:
    def __init__(self) -> None:
        self.fail = False

    def read(self, signer: str) -> ChainReading:
        if self.fail:
            raise ConnectionError("rpc down")
        return ChainReading(head=25, balance_wei=123 * 10**15, nonce=1)


_next_id = iter(range(1, 1000))


def request(status: RequestStatus, **kw: Any) -> InferenceRequest:
    rid = next(_next_id)
    fields: dict[str, Any] = {
        "chain_id": 1,
        "coordinator": COORD,
        "request_id": rid,
        "model_id": "0x" + "1" * 64,
        "consumer": "0x" + "2" * 40,
        "input": [1],
        "mode": int(Mode.NONE),
        "callback_gas_limit": 100_000,
        "fee": "0",
        "block_number": 10,
        "block_hash": "0x" + f"{rid:064x}",
        "tx_hash": "0x" + f"{rid:064x}",
        "log_index": 0,
        "status": status.value,
        "seen_at": ago(600),
    }
    fields.update(kw)
    return InferenceRequest(**fields)


def tx(nonce: int, status: TxStatus, **kw: Any) -> Transaction:
    return Transaction(
        chain_id=1,
        sender=SIGNER,
        nonce=nonce,
        tx_hash="0x" + f"{nonce + 100:064x}",
        raw=b"\x01",
        status=status.value,
        gas_limit=200_000,
        max_fee_per_gas="1",
        max_priority_fee_per_gas="1",
        **kw,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'oracle.db'}")
    db.upgrade()
    with db.session() as s:
        t0 = tx(0, TxStatus.CONFIRMED, mined_block=13, replaced_hashes=["0xa", "0xb"])
        t1 = tx(1, TxStatus.CONFIRMED, mined_block=30)
        s.add_all(
            [t0, t1, tx(2, TxStatus.BROADCAST), tx(3, TxStatus.SIGNED, replaced_hashes=["0xc"])]
        )
        s.flush()
        s.add_all(
            [
                # plain mode: queued 7 s, inference 2 s, relay 30 s, 40 s end to end, 3 blocks
                request(
                    RequestStatus.CONFIRMED,
                    seen_at=ago(100),
                    queued_at=ago(99),
                    inferred_at=ago(90),
                    inference_s=2.0,
                    confirmed_at=ago(60),
                    fulfil_tx_id=t0.id,
                ),
                # zk mode: queued 4 s, inference 1 s, proof 20 s, relay 10 s, 50 s, 20 blocks
                request(
                    RequestStatus.CONFIRMED,
                    mode=int(Mode.ZK),
                    seen_at=ago(90),
                    queued_at=ago(85),
                    inferred_at=ago(80),
                    inference_s=1.0,
                    proving_at=ago(80),
                    proved_at=ago(50),
                    prove_s=20.0,
                    confirmed_at=ago(40),
                    fulfil_tx_id=t1.id,
                ),
                # answered long before the window: counted, but in no latency histogram
                request(
                    RequestStatus.ERRORED,
                    error="model failed: gave up after 3 attempts",
                    inferred_at=ago(7300),
                    inference_s=0.5,
                    confirmed_at=ago(7200),
                ),
                request(
                    RequestStatus.ABANDONED,
                    error="model failed | fulfil simulation reverted: ModelNotFound",
                ),
                request(RequestStatus.QUEUED, seen_at=ago(500)),
                request(RequestStatus.SEEN, chain_id=2, seen_at=ago(10)),
            ]
        )
        s.add(ChainCursor(chain_id=1, coordinator=COORD, block_number=20, block_hash="0x0"))
        s.commit()
    yield db
    db.dispose()


def scrape(view: NodeView) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NodeCollector(lambda: view))
    return registry


def full_view(db: Database, probe: Probe | None = None) -> NodeView:
    return NodeView(
        db=db,
        chain_id=1,
        coordinator=COORD,
        signer=SIGNER,
        probe=probe or Probe(),
        health=lambda: HealthReport([HealthProblem(HealthCode.SIGNER_UNFUNDED, "no gas")]),
        retrying=lambda: {"out_of_gas": 1, "NotAssignedNode": 2},
        reorgs_seen=lambda: 2,
        prover_memory_limit_bytes=8 * 2**20,
        latency_window_s=3600,
        now=lambda: NOW,
    )


def test_requests_by_state_mode_and_reason(db: Database) -> None:
    r = scrape(full_view(db))
    c1 = {"chain_id": "1", "coordinator": COORD}

    def requests(state: str, mode: str = "none", **labels: str) -> float | None:
        return r.get_sample_value("oracle_requests", {**c1, **labels, "state": state, "mode": mode})

    assert requests("confirmed") == 1 and requests("confirmed", "zk") == 1
    assert requests("queued") == 1 and requests("errored") == 1
    assert requests("seen", chain_id="2") == 1 and requests("seen") is None
    assert r.get_sample_value("oracle_requests_seen_total", {**c1, "mode": "none"}) == 4
    assert r.get_sample_value("oracle_requests_seen_total", {**c1, "mode": "zk"}) == 1
    assert r.get_sample_value("oracle_error_answers_total", {**c1, "reason": "model_failed"}) == 1
    abandoned = {**c1, "reason": "simulation_reverted"}
    assert r.get_sample_value("oracle_abandoned_requests_total", abandoned) == 1
    # the oldest in-progress request on chain 1 is the queued one, seen 500 s ago
    assert r.get_sample_value("oracle_pending_request_max_age_seconds", c1) == 500


def test_latency_histograms_come_from_row_timestamps_in_the_window(db: Database) -> None:
    r = scrape(full_view(db))
    none = {"chain_id": "1", "coordinator": COORD, "mode": "none"}
    zk = {**none, "mode": "zk"}

    def stage(labels: dict[str, str], name: str, suffix: str, le: str | None = None) -> Any:
        extra = {"le": le} if le else {}
        return r.get_sample_value(
            f"oracle_request_stage_duration_seconds_{suffix}", {**labels, "stage": name, **extra}
        )

    assert r.get_sample_value("oracle_request_duration_seconds_sum", none) == 40
    assert r.get_sample_value("oracle_request_duration_seconds_sum", zk) == 50
    assert r.get_sample_value("oracle_request_duration_seconds_bucket", {**none, "le": "30.0"}) == 0
    assert r.get_sample_value("oracle_request_duration_seconds_bucket", {**none, "le": "60.0"}) == 1
    assert stage(none, "queue_wait", "sum") == pytest.approx(7)
    assert stage(zk, "queue_wait", "sum") == pytest.approx(4)
    # the errored row's inference (0.5 s) is two hours old: outside the window
    assert stage(none, "inference", "count") == 1 and stage(none, "inference", "sum") == 2
    assert stage(zk, "proof", "sum") == 20 and stage(none, "proof", "count") is None
    assert stage(none, "relay", "sum") == 30 and stage(zk, "relay", "sum") == 10
    assert stage(zk, "relay", "bucket", "5.0") == 0 and stage(zk, "relay", "bucket", "10.0") == 1
    assert r.get_sample_value("oracle_request_fulfil_blocks_sum", none) == 3
    assert r.get_sample_value("oracle_request_fulfil_blocks_sum", zk) == 20


def test_transactions_nonce_fee_bumps_cursor_and_chain(db: Database) -> None:
    r = scrape(full_view(db))
    s = {"chain_id": "1", "signer": SIGNER}
    assert r.get_sample_value("oracle_pending_transactions", s) == 2
    assert r.get_sample_value("oracle_transactions", {**s, "status": "confirmed"}) == 2
    assert r.get_sample_value("oracle_signer_next_nonce", s) == 4
    assert r.get_sample_value("oracle_fee_bumps_total", s) == 3
    c = {"chain_id": "1", "coordinator": COORD}
    assert r.get_sample_value("oracle_listener_block", c) == 20
    assert r.get_sample_value("oracle_listener_lag_blocks", c) == 5
    assert r.get_sample_value("oracle_listener_halted", c) == 0
    signer = {"chain_id": "1", "signer": SIGNER}
    assert (
        r.get_sample_value("oracle_signer_balance_wei", signer) == 123 * 10**15
    )  # a float: exact here, ~16 digits in general
    assert r.get_sample_value("oracle_signer_chain_nonce", signer) == 1
    assert r.get_sample_value("oracle_chain_rpc_up", {"chain_id": "1"}) == 1
    assert r.get_sample_value("oracle_reorgs_total", c) == 2


def test_health_is_exported_as_state_and_codes(db: Database) -> None:
    r = scrape(full_view(db))
    c = {"chain_id": "1", "coordinator": COORD}
    assert r.get_sample_value("oracle_healthy", c) == 0
    assert r.get_sample_value("oracle_health_state", {**c, "state": "degraded"}) == 1
    assert r.get_sample_value("oracle_health_state", {**c, "state": "healthy"}) == 0
    assert r.get_sample_value("oracle_health_problem", {**c, "code": "signer_unfunded"}) == 1
    assert r.get_sample_value("oracle_health_problem", {**c, "code": "listener_halted"}) == 0


def test_an_unreadable_chain_or_database_does_not_fail_the_scrape(
    db: Database, tmp_path: Path
) -> None:
    probe = Probe()
    probe.fail = True
    r = scrape(full_view(db, probe))
    assert r.get_sample_value("oracle_chain_rpc_up", {"chain_id": "1"}) == 0
    assert (
        r.get_sample_value("oracle_signer_balance_wei", {"chain_id": "1", "signer": SIGNER}) is None
    )
    assert r.get_sample_value("oracle_database_up") == 1
    assert (
        r.get_sample_value("oracle_listener_block", {"chain_id": "1", "coordinator": COORD}) == 20
    )

    empty = Database(f"sqlite:///{tmp_path / 'no-schema.db'}")  # never migrated
    try:
        r = scrape(full_view(empty))
        assert r.get_sample_value("oracle_database_up") == 0
        assert r.get_sample_value("oracle_chain_rpc_up", {"chain_id": "1"}) == 1
        assert b"oracle_requests{" not in generate_latest(r)
    finally:
        empty.dispose()


def test_metric_names_lists_exactly_what_a_full_scrape_exports(db: Database) -> None:
    exported = {m.name for m in NodeCollector(lambda: full_view(db)).collect()}
    assert exported == set(METRIC_NAMES)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "none"),
        ("bad input length: expected 4, got 3", "bad_input"),
        ("model failed", "model_failed"),
        ("proof failed: the circuit rejected this input", "proof_failed"),
        ("model failed | fulfilment reverted on chain", "fulfil_reverted"),
        ("something new", "other"),
    ],
)
def test_error_reason_codes(text: str | None, code: str) -> None:
    assert error_reason(text) == code


def test_optimistic_bonds_challenges_and_the_watcher(db: Database) -> None:
    bond, challenger_bond = "20000000000000000", "10000000000000000"
    claim = {"mode": int(Mode.OPTIMISTIC), "claim_node": SIGNER, "claim_bond": bond}
    with db.session() as s:
        s.add_all(
            [
                request(RequestStatus.POSTED, **claim),
                request(RequestStatus.PROVING, challenger="0x" + "9" * 40, **claim),
                request(RequestStatus.CONFIRMED, **claim),  # finalised: no longer at risk
                request(RequestStatus.SLASHED, challenger="0x" + "9" * 40, **claim),
            ]
        )
        for rid, (verdict, status) in enumerate(
            [("differs", "challenged"), ("agrees", "closed"), ("differs", "won")], start=1
        ):
            s.add(
                Watch(
                    chain_id=1,
                    coordinator=COORD,
                    request_id=rid,
                    posted_block=10,
                    model_id="0x" + "1" * 64,
                    node="0x" + "8" * 40,
                    posted_output=["1"],
                    bond=bond,
                    challenge_deadline=20,
                    proof_deadline=40,
                    verdict=verdict,
                    status=status,
                    challenger_bond=challenger_bond if verdict == "differs" else None,
                )
            )
    r = scrape(full_view(db))
    c1 = {"chain_id": "1", "coordinator": COORD}
    assert r.get_sample_value("oracle_optimistic_bonds_at_risk_wei", c1) == 2 * int(bond)
    assert r.get_sample_value("oracle_optimistic_open_challenges", c1) == 1
    assert r.get_sample_value("oracle_optimistic_slashed_answers_total", c1) == 1
    assert r.get_sample_value("oracle_watcher_bonds_at_risk_wei", c1) == int(challenger_bond)
    won = {**c1, "verdict": "differs", "status": "won"}
    assert r.get_sample_value("oracle_watcher_answers", won) == 1


def test_answers_waiting_to_be_retried_by_reason(db: Database) -> None:
    r = scrape(full_view(db))
    labels = {"chain_id": "1", "coordinator": COORD}
    name = "oracle_relayer_retrying_answers"
    assert r.get_sample_value(name, {**labels, "reason": "out_of_gas"}) == 1
    assert r.get_sample_value(name, {**labels, "reason": "NotAssignedNode"}) == 2
