"""docker-compose.yml checked as data: no engine runs here, so check it against the CLI."""

from __future__ import annotations

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
