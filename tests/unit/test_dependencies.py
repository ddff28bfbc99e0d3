"""Dependencies say what runs: every third-party module the node and the workers import is
declared in pyproject.toml, and the runtime lock (what the Docker image installs) holds
everything the declared runtime needs, while the development lock adds only tools."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from oracle.paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OWN = {"oracle", "workers"}
DEV_EXTRAS = {"dev"}  # tools; every other extra is a runtime feature (gpu, s3, ...)


def _name(requirement: str) -> str:
    """Normalised distribution name of a PEP 508 requirement (``celery[redis]>=5`` -> celery)."""
    raw = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", raw).lower()


def _declared(extras: bool) -> set[str]:
    names = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    if extras:
        for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items():
            if extra not in DEV_EXTRAS:
                names |= {_name(r) for r in reqs}
    return names


def _imported_modules(roots: list[Path]) -> dict[str, Path]:
    """Top-level module name -> one file importing it, for every absolute import."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], path)
    return found


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[_name(name)] = version.strip()
    return pins


def test_every_runtime_import_is_declared() -> None:
    distributions = packages_distributions()
    declared = _declared(extras=True)
    undeclared = {}
    for module, path in _imported_modules([ROOT / "oracle", ROOT / "workers"]).items():
        if module in sys.stdlib_module_names or module in OWN or module == "__future__":
            continue
        dists = {_name(d) for d in distributions.get(module, [])}
        assert dists, f"{module} (imported by {path}) is not installed"
        if not dists & declared:
            undeclared[module] = (sorted(dists), str(path.relative_to(ROOT)))
    assert not undeclared, undeclared


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import fastapi\nfrom uvicorn import run\nimport json\n")
    assert set(_imported_modules([tmp_path])) == {"fastapi", "uvicorn", "json"}


def test_the_runtime_lock_pins_every_runtime_dependency() -> None:
    runtime = _lock(ROOT / "requirements.lock")
    missing = {
        name
        for name in _declared(extras=False)
        if name not in runtime and name != "onnxruntime-gpu"
    }
    assert not missing, missing


def test_the_dev_lock_is_the_runtime_lock_plus_tools() -> None:
    text = (ROOT / "requirements-dev.lock").read_text()
    assert "-r requirements.lock" in text.splitlines()
    runtime, dev = _lock(ROOT / "requirements.lock"), _lock(ROOT / "requirements-dev.lock")
    assert not set(runtime) & set(dev), set(runtime) & set(dev)  # one pin per package
    for tool in ("pytest", "pytest-xdist", "mypy", "ruff", "scikit-learn"):
        assert tool in dev, tool
