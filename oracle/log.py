"""Structured logging (structlog) shared by every process.

Events are key/value, one logger per module, bound with request id, tx hash and block.
A processor drops any field whose name suggests a secret, as a second line of defence:
keys and passwords are never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_WORDS = ("private_key", "privatekey", "password", "secret", "mnemonic", "raw_tx")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_WORDS):
            event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is when a line is written, not when logging was
    configured: a CLI run inside a test runner (or any host that swaps the stream and
    closes it) must not leave every later log line pointing at a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", json_output: bool | None = None) -> None:
    """Configure structlog and the standard library once per process."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    logging.basicConfig(level=level, stream=_CurrentStderr(), format="%(message)s", force=True)
    for noisy in ("web3", "urllib3", "celery", "kombu", "alembic", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
