"""Print the fault suite's JUnit XML as a table: scenario -> outcome (``make faults``)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def rows(path: Path) -> list[tuple[str, str, str, float]]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "?")
        scenario, _, backend = name.partition("[")
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[tag]
        out.append(
            (
                scenario.removeprefix("test_").replace("_", " "),
                backend.rstrip("]") or "-",
                outcome,
                float(case.get("time", 0)),
            )
        )
    return out


def main() -> int:
    table = rows(Path(sys.argv[1]))
    width = max((len(r[0]) for r in table), default=8)
    print(f"| {'scenario':<{width}} | variant    | outcome | seconds |")
    print(f"|{'-' * (width + 2)}|------------|---------|---------|")
    for scenario, backend, outcome, seconds in table:
        print(f"| {scenario:<{width}} | {backend:<10} | {outcome:<7} | {seconds:7.1f} |")
    failed = sum(1 for r in table if r[2] in ("FAILED", "ERROR"))
    print(f"\n{len(table) - failed}/{len(table)} scenarios passed")
    for summary in sorted(Path(sys.argv[1]).parent.glob("soak-*.json")):
        print(f"\nsoak ({summary.stem.removeprefix('soak-')}): {summary.read_text().strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
