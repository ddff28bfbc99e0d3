"""Named crash points for the fault suite: the process dies there, as a SIGKILL would.

``ORACLE_CRASH_AT=relayer.after_sign`` makes the process exit at that point without any
clean-up (``os._exit``), so a test can stop the node exactly between two steps whose
order matters (sign, save, broadcast, receipt, commit). Unset, a crash point is one
dictionary lookup. Only for tests and drills; never set it on a real node.
"""

from __future__ import annotations

import os

import structlog

log = structlog.get_logger(__name__)

POINTS = frozenset(
    {
        "relayer.after_sign",  # the signed tx is saved, not yet broadcast
        "relayer.after_broadcast",  # the node has the tx, the DB still says signed
        "relayer.after_receipt",  # the receipt is read, the DB not yet updated
        "watcher.after_sign",  # a challenge or finalize hash is saved, not yet sent
        "worker.inference",  # a poison request: the model kills its worker process
    }
)
EXIT_CODE = 137


def crash_point(name: str) -> None:
    if os.environ.get("ORACLE_CRASH_AT") == name:
        log.warning("crashpoint.hit", point=name)
        os._exit(EXIT_CODE)
