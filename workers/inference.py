"""The inference stage: one request row in, an output (or an error reason) out.

Idempotent: a row is claimed with a conditional update, so a redelivered task (worker
killed, broker restarted) never produces a second result. Each claim counts an attempt;
past ``worker.max_attempts`` the request is answered with an error instead of looping.
A model this node does not hold (no record, file missing or unloadable) is never answered
with an error: the row is left ``unserved`` for a node that holds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from celery import Task
from celery.signals import worker_process_init

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
from oracle.dev.crashpoints import crash_point
from oracle.errors import InferenceError, InputError, ModelError
from oracle.fixedpoint import INT256_MAX, INT256_MIN
from oracle.models.store import ArtifactStore
from oracle.settings import Settings
from oracle.types import Mode, RequestStatus
from workers import rows
from workers.app import INFERENCE_TASK, app, enqueue_proof
from workers.runtime import SessionCache
from workers.wake import reset as reset_notifiers
from workers.wake import wake_relayer

log = structlog.get_logger(__name__)

CLAIMABLE = (RequestStatus.SEEN.value, RequestStatus.QUEUED.value)


@dataclass(frozen=True)
class Outcome:
    row_id: int
    status: str  # "inferred", "proving" (Zk: handed to the prover), "error", "unserved"
    # or "skipped"
    output: list[int] | None = None
    error: str | None = None


def validate_input(values: list[int], record: ModelRecord, max_abs_bits: int) -> None:
    """Raise :class:`InputError` with a short, on-chain-safe reason."""
    if len(values) != record.input_length:
        raise InputError(f"bad input length: expected {record.input_length}, got {len(values)}")
    bound = 1 << max_abs_bits
    for i, v in enumerate(values):
        if not -bound < v < bound:
            raise InputError(f"value out of range at index {i}: |x| must be < 2^{max_abs_bits}")


def quantize_output(values: np.ndarray[Any, Any], record: ModelRecord) -> list[int]:
    if values.size != record.output_length:
        raise InferenceError(
            f"model failed: output length {values.size}, registry says {record.output_length}"
        )
    if not np.all(np.isfinite(values)):
        raise InferenceError("model failed: non-finite output")
    out = [round(float(v) * (1 << record.output_scale)) for v in values]
    if any(not INT256_MIN <= q <= INT256_MAX for q in out):
        raise InferenceError("model failed: output does not fit int256")
    return out


class InferenceService:
    """Runs one request; plain code so it can be tested without Celery."""

    def __init__(self, settings: Settings, db: Database, sessions: SessionCache) -> None:
        self.settings = settings
        self.db = db
        self.sessions = sessions
        self.store = ArtifactStore(Path(settings.store.path))

    def run(self, row_id: int) -> Outcome:
        claimed = self._claim(row_id)
        if claimed is None:
            return Outcome(row_id, "skipped")
        row, record = claimed
        bound = log.bind(request_pk=row_id, request_id=row.request_id, model_id=row.model_id)
        if row.attempts > self.settings.worker.max_attempts:
            reason = f"model failed: gave up after {row.attempts - 1} attempts"
            bound.warning("inference.poison", attempts=row.attempts)
            return self._finish(row_id, None, reason, 0.0)
        crash_point("worker.inference")  # fault drills: a model that kills its process
        started = time.perf_counter()
        if record is None:
            return self._unserved(row_id, "unknown model: not held by this node", bound)
        try:
            values = [int(v) for v in row.input]
            validate_input(values, record, self.settings.worker.max_abs_input_bits)
            # The file is found and checked by its ONNX hash (never by the model id).
            path = (
                Path(record.artifact_path)
                if record.artifact_path
                else self.store.path_for(record.onnx_hash)
            )
            if not path.exists():
                path = self.store.path_for(record.onnx_hash)
            model = self.sessions.get(record.onnx_hash, path, record.input_length)
            x = np.array(values, dtype=np.float64) / float(1 << record.input_scale)
            y = model.run(x.astype(np.float32))
            output = quantize_output(y, record)
            if row.mode in (Mode.ZK, Mode.OPTIMISTIC):
                # The answer must be the circuit's output (the only one a proof can back),
                # so Zk and Optimistic requests go on to the prover stage.
                if not record.verifier:
                    raise InputError("model has no verifier: Zk mode is not available")
                elapsed = time.perf_counter() - started
                bound.info("inference.done_for_proof", seconds=round(elapsed, 6))
                return self._to_prover(row_id, [float(v) for v in y], elapsed)
        except InputError as exc:
            bound.info("inference.rejected", reason=str(exc))
            return self._finish(row_id, None, str(exc), time.perf_counter() - started)
        except ModelError as exc:
            return self._unserved(row_id, f"model unavailable: {exc}", bound)
        except InferenceError as exc:
            bound.error("inference.failed", reason=str(exc))
            reason = str(exc) if str(exc).startswith("model failed") else "model failed"
            return self._finish(row_id, None, reason, time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        bound.info("inference.done", seconds=round(elapsed, 6))
        return self._finish(row_id, output, None, elapsed)

    def _claim(self, row_id: int) -> tuple[InferenceRequest, ModelRecord | None] | None:
        return rows.claim(self.db, row_id, CLAIMABLE, attempts=InferenceRequest.attempts + 1)

    def _unserved(self, row_id: int, reason: str, bound: Any) -> Outcome:
        bound.warning("inference.unserved", reason=reason)
        won = rows.leave_unserved(self.db, row_id, CLAIMABLE, reason)
        return Outcome(row_id, "unserved" if won else "skipped", None, reason)

    def _to_prover(self, row_id: int, reference: list[float], seconds: float) -> Outcome:
        """Zk mode: keep onnxruntime's float output as the reference and hand over."""
        won = rows.finish(
            self.db,
            row_id,
            CLAIMABLE,
            status=RequestStatus.PROVING.value,
            reference_output=reference,
            inference_s=seconds,
            inferred_at=utcnow(),
        )
        return Outcome(row_id, "proving" if won else "skipped")

    def _finish(
        self, row_id: int, output: list[int] | None, error: str | None, seconds: float
    ) -> Outcome:
        won = rows.finish(
            self.db,
            row_id,
            CLAIMABLE,
            status=RequestStatus.INFERRED.value,
            output=[str(v) for v in output] if output is not None else None,
            error=error,
            inference_s=seconds,
            inferred_at=utcnow(),
        )
        if not won:
            return Outcome(row_id, "skipped")
        return Outcome(row_id, "error" if error else "inferred", output, error)


# -- Celery wiring -----------------------------------------------------------------------
_service: InferenceService | None = None


def _get_service() -> InferenceService:
    global _service  # noqa: PLW0603 - one service per worker process, by design
    if _service is None:
        settings: Settings = app.conf.oracle_settings
        _service = InferenceService(
            settings, Database(settings.db.url), SessionCache(settings.worker.provider)
        )
    return _service


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    # Connections and sessions must not be shared across a fork.
    global _service  # noqa: PLW0603
    _service = None
    reset_notifiers()


@app.task(name=INFERENCE_TASK, **rows.ROW_TASK_OPTIONS)
def run_inference(self: Task, row_id: int) -> str:
    """Celery entry point: takes a row id, never the row."""
    service = _get_service()
    outcome = service.run(row_id)
    if outcome.status == "proving":
        enqueue_proof(row_id)
    elif outcome.status not in ("skipped", "unserved"):
        wake_relayer(service.db, service.settings.redis.url, row_id)
    return outcome.status
