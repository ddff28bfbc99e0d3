"""Health as codes: which problems each part's report yields, and the verdict."""

from __future__ import annotations

from dataclasses import replace

from oracle.node.health import (
    HealthProblem,
    HealthState,
    PartsSeen,
    evaluate,
)
from oracle.types import HealthCode

FINE = PartsSeen(
    now=1000.0,
    stale_after_s=10.0,
    listener_halted=None,
    listener_last_poll_ok=999.0,
    relayer_problem=None,
    relayer_last_tick_ok=999.0,
)


def codes(seen: PartsSeen) -> list[HealthCode]:
    return [p.code for p in evaluate(seen).problems]


def test_all_parts_fine_is_healthy_200() -> None:
    report = evaluate(FINE)
    assert (report.state, report.http_status, report.healthy) == (HealthState.HEALTHY, 200, True)
    assert report.as_json() == {"state": "healthy", "healthy": True, "problems": []}


def test_halted_listener_is_down_503_with_its_reason() -> None:
    report = evaluate(replace(FINE, listener_halted="reorg below finality depth"))
    assert [p.code for p in report.problems] == [HealthCode.LISTENER_HALTED]
    assert (report.state, report.http_status, report.healthy) == (HealthState.DOWN, 503, False)
    assert report.as_json()["problems"] == [
        {"code": "listener_halted", "detail": "reorg below finality depth"}
    ]


def test_stale_parts_are_down() -> None:
    assert codes(replace(FINE, listener_last_poll_ok=None)) == [HealthCode.LISTENER_STALE]
    assert codes(replace(FINE, relayer_last_tick_ok=900.0)) == [HealthCode.RELAYER_STALE]
    assert evaluate(replace(FINE, relayer_last_tick_ok=None)).http_status == 503


def test_relayer_problem_alone_is_degraded_206() -> None:
    problem = HealthProblem(HealthCode.SIGNER_UNFUNDED, "insufficient funds for gas")
    report = evaluate(replace(FINE, relayer_problem=problem))
    assert report.problems == [problem]
    assert (report.state, report.http_status, report.healthy) == (HealthState.DEGRADED, 206, False)


def test_answers_waiting_to_be_retried_are_degraded_with_their_reasons() -> None:
    report = evaluate(replace(FINE, relayer_retrying={"out_of_gas": 1, "NotAssignedNode": 3}))
    assert [p.code for p in report.problems] == [HealthCode.ANSWERS_RETRYING]
    assert report.problems[0].detail == (
        "answers waiting to be retried: 3 NotAssignedNode, 1 out_of_gas"
    )
    assert (report.state, report.http_status) == (HealthState.DEGRADED, 206)
