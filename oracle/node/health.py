"""The node's health: what each part reports, as stable codes, and the verdict.

:func:`evaluate` turns what the parts report into a list of problems ``(code, detail)``;
the state is *down* when any code is in :data:`oracle.types.DOWN_CODES`, *degraded* when
there are only other problems, *healthy* when there are none. ``/healthz`` answers 200,
206 or 503 accordingly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oracle.types import DOWN_CODES, HealthCode, HealthProblem

__all__ = ["HealthProblem", "HealthReport", "HealthState", "PartsSeen", "evaluate"]


class HealthState(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


HTTP_STATUS = {HealthState.HEALTHY: 200, HealthState.DEGRADED: 206, HealthState.DOWN: 503}


@dataclass(frozen=True)
class HealthReport:
    problems: list[HealthProblem] = field(default_factory=list)

    @property
    def state(self) -> HealthState:
        if any(p.code in DOWN_CODES for p in self.problems):
            return HealthState.DOWN
        return HealthState.DEGRADED if self.problems else HealthState.HEALTHY

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.state]

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "healthy": self.healthy,
            "problems": [{"code": p.code.value, "detail": p.detail} for p in self.problems],
        }


@dataclass(frozen=True)
class PartsSeen:
    """What the node's parts report, read at one instant."""

    now: float
    stale_after_s: float
    listener_halted: str | None
    listener_last_poll_ok: float | None
    relayer_problem: HealthProblem | None
    relayer_last_tick_ok: float | None
    relayer_retrying: Mapping[str, int] = field(default_factory=dict)  # reason -> answers


def evaluate(seen: PartsSeen) -> HealthReport:
    problems: list[HealthProblem] = []
    if seen.listener_halted:
        problems.append(HealthProblem(HealthCode.LISTENER_HALTED, seen.listener_halted))
    elif _stale(seen.listener_last_poll_ok, seen):
        problems.append(
            HealthProblem(HealthCode.LISTENER_STALE, "has not polled the chain recently")
        )
    if seen.relayer_problem is not None:
        problems.append(seen.relayer_problem)
    if seen.relayer_retrying:
        waiting = ", ".join(f"{n} {reason}" for reason, n in sorted(seen.relayer_retrying.items()))
        problems.append(
            HealthProblem(HealthCode.ANSWERS_RETRYING, f"answers waiting to be retried: {waiting}")
        )
    if _stale(seen.relayer_last_tick_ok, seen):
        problems.append(
            HealthProblem(HealthCode.RELAYER_STALE, "has not completed a round recently")
        )
    return HealthReport(problems)


def _stale(last_ok: float | None, seen: PartsSeen) -> bool:
    return last_ok is None or seen.now - last_ok > seen.stale_after_s
