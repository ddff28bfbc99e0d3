"""The contracts' own suite, run by pytest so that it overlaps the Python tests (`make test`
runs everything under pytest-xdist; solc-js spends minutes in the IR pipeline on one core).

Three checks on one worker (xdist group ``foundry``), in any order, over one ``forge build``
(the module's fixture; ``forge test`` and ``forge snapshot`` reuse its cache): Foundry's
unit, fuzz and invariant tests (``solidity/test``), the checked-in gas snapshot
(``solidity/.gas-snapshot``: a gas change fails here until ``make gas-snapshot`` records it,
so it shows in review), and Slither over the same build (it fails on any medium or high
finding not explained in the code with a ``slither-disable-next-line`` comment).
``make test-contracts`` runs the same checks alone."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from oracle.paths import ROOT

SOLIDITY = ROOT / "solidity"
# Unit tests only in the snapshot: invariant runs report revert counts that vary from run to
# run, and fuzz averages move with the fuzz dictionary (constants of every contract's bytecode).
SNAPSHOT_ARGS = ["--no-match-test", "^(testFuzz_|invariant_)"]
SLITHER = ROOT / ".venv-slither" / "bin" / "slither"

pytestmark = pytest.mark.xdist_group("foundry")


def forge() -> str:
    """The platform binary: the npm launcher (node_modules/.bin/forge) exits 0 whatever forge
    returns."""
    found = sorted((ROOT / "node_modules" / "@foundry-rs").glob("forge-*/bin/forge"))
    if not found:
        pytest.fail("forge is not installed: `make setup` installs @foundry-rs/forge from npm")
    return str(found[0])


def run(args: list[str], timeout: float) -> str:
    env = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    done = subprocess.run(
        args, cwd=SOLIDITY, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args[:2])} failed:\n{output[-6000:]}"
    return output


def stale_build_info() -> bool:
    """Whether forge-out holds build info from an earlier build of a source that changed since
    (forge keeps the build info of files a partial rebuild did not touch): Slither would read
    both versions and match its ``slither-disable`` comments against the wrong lines."""
    seen: dict[str, str] = {}
    for path in sorted((SOLIDITY / "forge-out" / "build-info").glob("*.json")):
        sources = json.loads(path.read_text())["input"]["sources"]
        for name, source in sources.items():
            digest = hashlib.sha256(source.get("content", "").encode()).hexdigest()
            if seen.setdefault(name, digest) != digest:
                return True
    return False


@pytest.fixture(scope="module", autouse=True)
def forge_build() -> None:
    """Sources and tests compiled once, with build info (foundry.toml) for Slither; from
    scratch when an earlier partial build left stale build info (a fresh clone never does)."""
    run([forge(), "build"], timeout=900)
    if stale_build_info():
        run([forge(), "clean"], timeout=60)
        run([forge(), "build"], timeout=900)


@pytest.mark.timeout(1200)
def test_forge_unit_fuzz_and_invariant_tests_pass() -> None:
    output = run([forge(), "test"], timeout=900)
    assert "0 failed" in output and " tests passed" in output, output[-2000:]


@pytest.mark.timeout(1200)
def test_gas_matches_the_checked_in_snapshot() -> None:
    run([forge(), "snapshot", "--check", *SNAPSHOT_ARGS], timeout=600)


@pytest.mark.timeout(1200)
def test_slither_finds_nothing_unexplained() -> None:
    if not SLITHER.exists():
        pytest.fail("Slither is not installed: `make test` makes .venv-slither")
    # --ignore-compile: the fixture's build (foundry.toml writes its build info).
    output = run(
        [str(SLITHER), ".", "--config-file", "slither.config.json", "--ignore-compile"],
        timeout=600,
    )
    assert "0 result(s) found" in output, output[-4000:]
