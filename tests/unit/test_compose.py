"""docker-compose.yml checked as data: no engine runs here, so check it against the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from oracle.cli import app
from oracle.paths import ROOT
from oracle.settings import Settings

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ORACLE_SERVICES = [name for name, svc in SERVICES.items() if "build" in svc]


def test_required_services_exist() -> None:
    assert {"redis", "postgres", "anvil", "migrate", "node", "worker", "prover"} <= set(SERVICES)


def test_prover_consumes_the_proof_queue_one_at_a_time() -> None:
    command = SERVICES["prover"]["command"]
    assert command[command.index("--queue") + 1] == "proof"
    assert command[command.index("--concurrency") + 1] == "1"
    # The models volume is shared: the prover reads the circuits onboarding stored there.
    assert SERVICES["prover"]["volumes"] == SERVICES["node"]["volumes"]


def parses(args: list[str]) -> int:
    """Exit code of the CLI parsing ``args``: 0 when every command and option name exists.

    ``--help`` is appended so nothing runs; click still rejects unknown commands and
    options with exit code 2 before it prints any help.
    """
    result = CliRunner().invoke(app, [*args, "--help"])
    return int(result.exit_code)


@pytest.mark.parametrize("name", ORACLE_SERVICES)
def test_each_oracle_command_parses_with_the_cli(name: str) -> None:
    assert parses(list(SERVICES[name]["command"])) == 0, SERVICES[name]["command"]


def test_the_parser_check_can_fail() -> None:
    assert parses(["db", "upgrayedd"]) == 2
    assert parses(["worker", "--no-such-flag", "1"]) == 2


@pytest.mark.parametrize("name", ORACLE_SERVICES)
def test_oracle_env_vars_are_real_settings(name: str) -> None:
    env = SERVICES[name].get("environment", {})
    for key in env:
        if key.startswith("ORACLE_") and "__" in key:
            model: Any = Settings
            for part in key.removeprefix("ORACLE_").lower().split("__"):
                assert model is not None and part in model.model_fields, key
                model = model.model_fields[part].annotation


def test_worker_reserves_a_gpu_and_installs_onnxruntime_gpu() -> None:
    worker = SERVICES["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert worker["build"]["args"]["ONNXRUNTIME"] == "onnxruntime-gpu"


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name in ("redis", "postgres", "anvil", "node", "worker"):
        assert "healthcheck" in SERVICES[name], name


def test_start_order_migrates_before_the_node() -> None:
    deps = SERVICES["node"]["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]


def test_no_secret_is_written_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" not in text
    assert "${ORACLE_SIGNER__PRIVATE_KEY" in text
    _ = Path


def test_the_watcher_is_opt_in_with_its_own_key_and_the_shared_circuits() -> None:
    watcher = SERVICES["watcher"]
    assert watcher["command"] == ["watch"] and watcher["profiles"] == ["watcher"]
    env = watcher["environment"]
    assert "ORACLE_WATCHER__SIGNER__PRIVATE_KEY" in env
    assert "ORACLE_SIGNER__PRIVATE_KEY" not in env  # never the node's key
    assert watcher["volumes"] == SERVICES["node"]["volumes"]


# -- Dockerfile (the image every oracle service builds) -----------------------------------
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _run_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    return [line.strip() for line in DOCKERFILE.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_image_installs_the_runtime_lock_only() -> None:
    pip_installs = [line for line in _run_lines() if "pip install" in line]
    assert any("-r requirements.lock" in line for line in pip_installs), pip_installs
    assert not any(
        "requirements-dev.lock" in line for line in _run_lines() if not line.startswith("#")
    )
    dev_only = {"pytest", "mypy", "ruff", "hypothesis", "moto", "scikit-learn", "matplotlib"}
    runtime = {
        line.split("==")[0].lower()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    assert not runtime & dev_only, runtime & dev_only


def _major(spec: str) -> int:
    """The lowest major version a ``>=N`` engines range admits (0 for older ranges)."""
    digits = spec.replace(" ", "").removeprefix(">=").split(".")[0]
    return int(digits) if digits.isdigit() else 0


def test_the_image_has_the_node_version_the_npm_packages_require() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    required = max(
        _major(pkg["engines"]["node"])
        for pkg in lock["packages"].values()
        if isinstance(pkg.get("engines"), dict) and "node" in pkg["engines"]
    )
    assert required >= 20  # the anvil, forge and solc packages' own floor
    version = re.search(r"^ARG NODE_VERSION=(\d+)$", DOCKERFILE, re.MULTILINE)
    assert version is not None and int(version.group(1)) >= required
    assert "FROM node:${NODE_VERSION}" in DOCKERFILE
    assert "apt-get install" not in DOCKERFILE or "nodejs" not in DOCKERFILE  # not Debian's 18
    assert any(line.startswith("RUN npm ci") for line in _run_lines())
