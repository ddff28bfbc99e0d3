"""Run the local stack's processes: anvil, redis-server, workers and the node.

Used by ``oracle up``, ``oracle demo``, the benchmark and the integration tests, so they
all start the same real programs the same way. Every process gets its own process group
and is stopped (TERM, then KILL) by whoever started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import redis
from web3 import Web3

from oracle.chain.client import connect
from oracle.errors import ToolchainError
from oracle.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def anvil_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise ToolchainError("anvil not found: run `make setup` (installs @foundry-rs/anvil from npm)")


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found:
        return found
    raise ToolchainError(
        "redis-server not found: run `make setup` (installs Debian's redis-server)"
    )


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(interval_s)
    raise ToolchainError(f"timed out after {timeout_s:.0f}s waiting for {what}")


class ManagedProcess:
    """A child process in its own group, logging to a file."""

    name = "process"

    def __init__(
        self, argv: list[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            cwd=ROOT,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Overridden by services that must answer before start() returns."""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = (
                self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            )
            raise ToolchainError(f"{self.name} exited early; log tail:\n{tail}")

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout_s)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


class Anvil(ManagedProcess):
    name = "anvil"

    def __init__(
        self,
        log_path: Path,
        port: int | None = None,
        block_time: float | None = None,
        chain_id: int = 31337,
        gas_limit: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        argv = [
            anvil_binary(),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--chain-id",
            str(chain_id),
            "--silent",
        ]
        if block_time:
            argv += ["--block-time", str(block_time)]
        if gas_limit is not None:
            argv += ["--gas-limit", str(gas_limit)]  # anvil's default block holds 30M
        super().__init__(argv, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def w3(self) -> Web3:
        return connect(self.url, timeout_s=30)

    def wait_ready(self) -> None:
        w3 = self.w3()

        def ready() -> bool:
            self.check_alive()
            return w3.is_connected()

        wait_until(ready, 30, "anvil to answer")


class RedisServer(ManagedProcess):
    name = "redis-server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--protected-mode",
            "yes",
        ]
        super().__init__(argv, workdir / "redis.log")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def ready() -> bool:
            self.check_alive()
            return bool(client.ping())

        wait_until(ready, 20, "redis-server to answer")
        client.close()


def oracle_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "oracle.cli", *args]


class OracleProcess(ManagedProcess):
    """``oracle node`` or ``oracle worker`` as a child process with a given environment."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log_path: Path,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self._ready = ready
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        super().__init__(oracle_argv(*args), log_path, full_env)

    def wait_ready(self) -> None:
        if self._ready is None:
            return
        ready = self._ready

        def check() -> bool:
            self.check_alive()
            return ready()

        wait_until(check, 60, f"{self.name} to become ready", interval_s=0.1)


def file_exists(path: Path) -> Callable[[], bool]:
    """Readiness by file: ``oracle worker --ready-file`` writes it once consuming."""
    return path.exists
