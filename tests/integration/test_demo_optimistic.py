"""`make demo-optimistic` end to end, the three parts together: the node, the watcher process
and the cheating node on one chain. The story holds only if every wrong answer the cheater
posted was challenged by the watcher and slashed, the honest node answered every re-opened
request in Zk, and each consumer callback fired once with the circuit's output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from oracle.examples.optimistic import run_optimistic_demo

pytestmark = pytest.mark.integration


def test_the_optimistic_story_holds(tmp_path: Path) -> None:
    out = io.StringIO()
    ok = run_optimistic_demo(4, tmp_path, Console(file=out, width=200))
    text = out.getvalue()
    assert ok, text
    assert (
        "wrong answers slashed: 2/2" in text
        and "consumer saw exactly one value per request, the circuit's: 4/4" in text
    )
