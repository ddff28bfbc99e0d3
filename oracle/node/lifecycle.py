"""One shape for every long-running part, and a supervisor that runs them together.

A :class:`Service` is started (quick, may raise), then run in its own thread (blocks until
stopped), then stopped (only asks; never blocks for long). The :class:`Supervisor`
starts each service in order, runs each in a thread, and on the first failure (a
``run()`` that raises, or returns while nobody asked it to stop) stops them all and keeps
that failure for the caller to report. The node is never left half-running.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from oracle.errors import OracleError

log = structlog.get_logger(__name__)


class Service(Protocol):
    @property
    def name(self) -> str: ...

    def start(self) -> None:
        """Prepare to run: quick, and may raise (then nothing runs)."""

    def run(self) -> None:
        """Do the work until :meth:`stop` is called."""

    def stop(self) -> None:
        """Ask :meth:`run` to return soon. Safe to call more than once, from any thread."""


@dataclass(frozen=True)
class Failure:
    service: str
    reason: str

    def __str__(self) -> str:
        return f"{self.service} failed: {self.reason}"


class ServiceFailedError(OracleError):
    """A long-running part of the node failed; all of them were stopped."""


class Supervisor:
    """Starts, runs and stops a fixed set of services; the first failure stops them all."""

    def __init__(self, services: Sequence[Service], join_timeout_s: float = 10.0) -> None:
        self.services = list(services)
        self.join_timeout_s = join_timeout_s
        self.failure: Failure | None = None
        self.done = threading.Event()  # set on the first failure or on stop()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start every service, then run each in a thread; returns at once. If a start
        raises, the services already started are stopped and the error propagates."""
        started: list[Service] = []
        for service in self.services:
            try:
                service.start()
            except BaseException:
                for done in reversed(started):
                    done.stop()
                raise
            started.append(service)
        for service in self.services:
            thread = threading.Thread(
                target=self._run, args=(service,), name=service.name, daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def wait(self, stop: threading.Event, poll_s: float = 0.5) -> Failure | None:
        """Block until ``stop`` is set or a service fails; return the failure, if any."""
        while not stop.is_set() and not self.done.is_set():
            self.done.wait(poll_s)
        return self.failure

    def stop(self) -> None:
        """Ask every service to stop and wait (bounded) for their threads."""
        self._stopping.set()
        self.done.set()
        self._stop_all()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=self.join_timeout_s)

    # -- helpers ---------------------------------------------------------------------
    def _run(self, service: Service) -> None:
        try:
            service.run()
        except BaseException as exc:  # SystemExit included: uvicorn exits on a bad port
            self._failed(Failure(service.name, f"{type(exc).__name__}: {exc}"))
            return
        if not self._stopping.is_set():
            self._failed(Failure(service.name, "stopped on its own"))

    def _failed(self, failure: Failure) -> None:
        with self._lock:
            if self.failure is not None or self._stopping.is_set():
                return
            self.failure = failure
            self._stopping.set()
        log.error("node.service_failed", service=failure.service, reason=failure.reason)
        self._stop_all()
        self.done.set()

    def _stop_all(self) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:
                log.warning("node.stop_failed", service=service.name, error=str(exc))
