"""Bad arguments get a message and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oracle.paths import ROOT

EXAMPLE = str(ROOT / "models" / "example_mlp.onnx")
CAL = str(ROOT / "models" / "example_mlp.calibration.json")


def oracle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "ORACLE_CONFIG": "", **(env or {})}
    full_env.pop("ORACLE_CONFIG")
    return subprocess.run(
        [sys.executable, "-m", "oracle.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["request", "0x1234", "--input", "1,2"], "model id is 64 hex digits"),
        (["request", "0x" + "ab" * 32, "--input", "a,b"], "comma-separated numbers"),
        (["request", "0x" + "ab" * 32, "--input", "1", "--mode", "fast"], "--mode must be"),
        (["model", "register", "/nonexistent.onnx"], "is not a file"),
        (["--config", "/nonexistent.yaml", "status"], "does not exist"),
        (["worker", "--queue", "nope"], "unknown queue"),
        (["--log-level", "LOUD", "status"], "--log-level"),
        (["worker", "--queue", "proof", "--concurrency", "2"], "one request at a time"),
        (["model", "register", EXAMPLE, "--zk", "--dev-srs"], "--zk needs --calibration"),
        (["model", "register", EXAMPLE, "--zk", "--calibration", CAL], "exactly one of --srs"),
        (
            ["model", "register", EXAMPLE, "--zk", "--calibration", CAL, "--dev-srs", "--srs", CAL],
            "exactly one of --srs",
        ),
        (["model", "register", EXAMPLE, "--dev-srs"], "only apply with --zk"),
        (
            ["model", "register", EXAMPLE, "--zk", "--calibration", CAL, "--srs", "/nope.srs"],
            "does not exist",
        ),
        (
            [
                "model",
                "register",
                EXAMPLE,
                "--zk",
                "--calibration",
                CAL,
                "--dev-srs",
                "--target",
                "speed",
            ],
            "--target must be",
        ),
        (
            [
                "model",
                "register",
                EXAMPLE,
                "--zk",
                "--calibration",
                CAL,
                "--dev-srs",
                "--output-scale",
                "8",
            ],
            "--output-scale does not apply",
        ),
    ],
)
def test_bad_arguments_get_a_message(args: list[str], message: str) -> None:
    result = oracle(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    result = oracle("status", "--frobnicate")
    assert result.returncode == 2
    assert "No such option" in result.stderr and "Traceback" not in result.stderr


def test_node_without_settings_says_what_is_missing(tmp_path: Path) -> None:
    result = oracle("node", env={"ORACLE_DB__URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 2
    assert "no schema" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_mode_is_refused_with_a_message() -> None:
    result = oracle("request", "0x" + "ab" * 32, "--input", "1", "--mode", "pessimistic")
    assert result.returncode == 2
    assert "--mode must be none, zk or optimistic" in result.stderr
    assert "Traceback" not in result.stderr
