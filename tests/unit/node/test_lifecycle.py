"""The supervisor: every part runs in its own thread; the first failure stops them all."""

from __future__ import annotations

import threading

import pytest

from oracle.node.lifecycle import Supervisor


class Part:
    """A service whose ``run`` blocks until stopped, or fails / returns when told to."""

    def __init__(self, name: str, fail_on_start: bool = False) -> None:
        self.name = name
        self.fail_on_start = fail_on_start
        self.started = self.stopped = False
        self._stop = threading.Event()
        self.crash = threading.Event()
        self.quit = threading.Event()

    def start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.started = True

    def run(self) -> None:
        while not self._stop.wait(0.01):
            if self.crash.is_set():
                raise RuntimeError("boom")
            if self.quit.is_set():
                return

    def stop(self) -> None:
        self.stopped = True
        self._stop.set()


def test_a_failing_part_stops_every_part_and_is_reported() -> None:
    parts = [Part("a"), Part("b"), Part("c")]
    supervisor = Supervisor(parts)
    supervisor.start()
    parts[1].crash.set()
    failure = supervisor.wait(threading.Event())
    assert failure is not None and failure.service == "b" and "boom" in failure.reason
    assert all(p.stopped for p in parts)
    supervisor.stop()


def test_a_part_that_returns_on_its_own_is_a_failure() -> None:
    parts = [Part("a"), Part("b")]
    supervisor = Supervisor(parts)
    supervisor.start()
    parts[0].quit.set()
    failure = supervisor.wait(threading.Event())
    assert failure is not None and failure.service == "a"
    assert parts[1].stopped


def test_stop_is_not_a_failure() -> None:
    parts = [Part("a"), Part("b")]
    supervisor = Supervisor(parts)
    supervisor.start()
    stop = threading.Event()
    stop.set()
    assert supervisor.wait(stop) is None
    supervisor.stop()
    assert supervisor.failure is None and all(p.stopped for p in parts)


def test_a_start_that_raises_stops_what_started() -> None:
    parts = [Part("a"), Part("b", fail_on_start=True), Part("c")]
    with pytest.raises(RuntimeError, match="b cannot start"):
        Supervisor(parts).start()
    assert parts[0].stopped and not parts[2].started
