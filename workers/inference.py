"""The inference stage: request rows in, an output (or an error reason) for each out.

Idempotent: a row is claimed with a conditional update, so a redelivered task (worker
killed, broker restarted) never produces a second result. Each claim counts an attempt;
past ``worker.max_attempts`` the request is answered with an error instead of looping.
A model this node does not hold (no record, file missing or unloadable) is never answered
with an error: the row is left ``unserved`` for a node that holds it.

Micro-batching: a job on its row's first attempt also claims up to ``worker.batch_size - 1``
other queued, never-claimed rows for the same model (``rows.claim_batch``) and runs them
all as one onnxruntime batch; inputs are checked and converted to and from fixed point for
the whole batch at once, and each row gets its own result or error, written under its own
condition (one statement claims the batch, one executemany writes the results: see
``workers.rows``). The other rows' own jobs, when they arrive, find their rows done and
skip. A row that was ever claimed (a batch that crashed its worker, a redelivery) is never
batched again: its own job runs it alone, so a poison request takes down only itself once
its attempts run out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog
from celery import Task
from celery.signals import worker_process_init

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
from oracle.dev.crashpoints import crash_point
from oracle.errors import InferenceError, InputError, ModelError
from oracle.fixedpoint import INT256_MAX, INT256_MIN
from oracle.models.remote import shared_store
from oracle.models.store import ArtifactStore
from oracle.settings import Settings
from oracle.types import Mode, RequestStatus
from workers import rows
from workers.app import INFERENCE_TASK, app, enqueue_proof
from workers.runtime import LoadedModel, SessionCache
from workers.wake import reset as reset_notifiers
from workers.wake import wake_relayer

log = structlog.get_logger(__name__)

CLAIMABLE = (RequestStatus.SEEN.value, RequestStatus.QUEUED.value)
PROVEN_MODES = (Mode.ZK, Mode.OPTIMISTIC)
_INT64_SAFE_BITS = 62  # |x| < 2**62 compares exactly in int64 without overflow
_TWO_255 = float(2**255)


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


def prepare_inputs(
    inputs: Sequence[Sequence[Any]], record: ModelRecord, max_abs_bits: int
) -> tuple[npt.NDArray[np.float32], dict[int, str]]:
    """The model's float inputs for a batch of on-chain integer inputs, and the reason
    each rejected row was rejected (the rows of the matrix at those indexes are unused).
    Same reasons as :func:`validate_input`; the range check and the conversion from fixed
    point run over the whole batch."""
    n, width = len(inputs), record.input_length
    ints = np.zeros((n, width), dtype=np.int64)
    x = np.zeros((n, width), dtype=np.float32)
    errors: dict[int, str] = {}
    slow: list[int] = []  # rows checked one by one: values beyond int64's exact range
    for i, raw in enumerate(inputs):
        if len(raw) != width:
            errors[i] = f"bad input length: expected {width}, got {len(raw)}"
            continue
        values = [int(v) for v in raw]
        if max_abs_bits > _INT64_SAFE_BITS:
            slow.append(i)
            continue
        try:
            ints[i] = values
        except OverflowError:
            slow.append(i)
    fast = np.ones(n, dtype=bool)
    fast[list(errors) + slow] = False
    bound = 1 << min(max_abs_bits, _INT64_SAFE_BITS)
    out_of_range = (ints <= -bound) | (ints >= bound)
    for i in np.flatnonzero(fast & out_of_range.any(axis=1)).tolist():
        index = int(np.argmax(out_of_range[i]))
        errors[i] = f"value out of range at index {index}: |x| must be < 2^{max_abs_bits}"
        fast[i] = False
    scale = float(1 << record.input_scale)
    x[fast] = (ints[fast].astype(np.float64) / scale).astype(np.float32)
    for i in slow:
        values = [int(v) for v in inputs[i]]
        try:
            validate_input(values, record, max_abs_bits)
        except InputError as exc:
            errors[i] = str(exc)
            continue
        x[i] = (np.array(values, dtype=np.float64) / scale).astype(np.float32)
    return x, errors


def quantize_outputs(
    y: npt.NDArray[np.float64], record: ModelRecord
) -> list[list[int] | InferenceError]:
    """:func:`quantize_output` for each row of ``y`` (one model output per row), rounding
    and range checks over the whole batch; a row's failure is its own."""
    n = y.shape[0]
    if y.size != n * record.output_length:
        width = y.size // n if n else 0
        return [
            InferenceError(
                f"model failed: output length {width}, registry says {record.output_length}"
            )
        ] * n
    y = y.reshape(n, record.output_length)
    finite: list[bool] = np.asarray(np.isfinite(y).all(axis=1), dtype=bool).tolist()
    with np.errstate(over="ignore", invalid="ignore"):
        q = np.round(y * float(1 << record.output_scale))
        in_range = np.asarray(((q >= -_TWO_255) & (q < _TWO_255)).all(axis=1), dtype=bool)
        fits: list[bool] = in_range.tolist()
    result: list[list[int] | InferenceError] = []
    for i in range(n):
        if not finite[i]:
            result.append(InferenceError("model failed: non-finite output"))
        elif not fits[i]:
            result.append(InferenceError("model failed: output does not fit int256"))
        else:
            result.append([int(v) for v in q[i].tolist()])
    return result


def _reason(exc: InferenceError) -> str:
    return str(exc) if str(exc).startswith("model failed") else "model failed"


class InferenceService:
    """Runs one job (its row, and a batch of others); plain code, testable without Celery."""

    def __init__(self, settings: Settings, db: Database, sessions: SessionCache) -> None:
        self.settings = settings
        self.db = db
        self.sessions = sessions
        self.store = ArtifactStore(Path(settings.store.path))
        self.shared = shared_store(settings.store)  # None: the store is a plain directory

    def run(self, row_id: int) -> list[Outcome]:
        """The outcome of the job's own row first, then one per batched row."""
        claimed = self._claim(row_id)
        if claimed is None:
            return [Outcome(row_id, "skipped")]
        row, record = claimed
        bound = log.bind(request_pk=row_id, request_id=row.request_id, model_id=row.model_id)
        if row.attempts > self.settings.worker.max_attempts:
            reason = f"model failed: gave up after {row.attempts - 1} attempts"
            bound.warning("inference.poison", attempts=row.attempts)
            return [self._finish(row_id, None, reason, 0.0)]
        crash_point("worker.inference")  # fault drills: a model that kills its process
        started = time.perf_counter()
        if record is None:
            return [self._unserved(row_id, "unknown model: not held by this node", bound)]
        try:
            model = self._model(record)
        except ModelError as exc:
            return [self._unserved(row_id, f"model unavailable: {exc}", bound)]
        batch = [rows.BatchRow(row.id, row.input, row.mode)]
        if row.attempts == 1 and self.settings.worker.batch_size > 1:
            batch += rows.claim_batch(
                self.db, row, RequestStatus.QUEUED.value, self.settings.worker.batch_size - 1
            )
        return self._run_batch(batch, record, model, started, bound)

    def _model(self, record: ModelRecord) -> LoadedModel:
        # The file is found and checked by its ONNX hash (never by the model id).
        if self.shared is not None:  # this host's cache, filled from the shared store
            path = self.shared.model(record.onnx_hash)
            return self.sessions.get(record.onnx_hash, path, record.input_length)
        path = (
            Path(record.artifact_path)
            if record.artifact_path
            else self.store.path_for(record.onnx_hash)
        )
        if not path.exists():
            path = self.store.path_for(record.onnx_hash)
        return self.sessions.get(record.onnx_hash, path, record.input_length)

    def _run_batch(
        self,
        batch: list[rows.BatchRow],
        record: ModelRecord,
        model: LoadedModel,
        started: float,
        bound: Any,
    ) -> list[Outcome]:
        x, errors = prepare_inputs(
            [r.input for r in batch], record, self.settings.worker.max_abs_input_bits
        )
        for i, reason in errors.items():
            bound.info("inference.rejected", batch_pk=batch[i].id, reason=reason)
        ok = [i for i in range(len(batch)) if i not in errors]
        ran = dict(zip(ok, self._infer(model, x[ok], record, bound), strict=True))
        seconds = (time.perf_counter() - started) / len(batch)
        done_at = utcnow()
        results: list[tuple[int, dict[str, Any]]] = []
        outcomes: list[Outcome] = []
        for i, row in enumerate(batch):
            # Every row writes the same columns (one bulk update); None clears a column.
            values: dict[str, Any] = {
                "status": RequestStatus.INFERRED.value,
                "output": None,
                "error": errors.get(i),
                "reference_output": None,
                "inference_s": seconds,
                "inferred_at": done_at,
            }
            output: list[int] | None = None
            if values["error"] is None:
                floats, got = ran[i]
                if isinstance(got, InferenceError):
                    bound.error("inference.failed", batch_pk=row.id, reason=str(got))
                    values["error"] = _reason(got)
                elif row.mode in PROVEN_MODES and not record.verifier:
                    values["error"] = "model has no verifier: Zk mode is not available"
                elif row.mode in PROVEN_MODES and floats is not None:
                    # Zk and Optimistic: the answer must be the circuit's output (the only one
                    # a proof can back): keep onnxruntime's float output as the reference and
                    # hand over to the prover stage.
                    values["status"] = RequestStatus.PROVING.value
                    values["reference_output"] = [float(v) for v in floats]
                else:
                    output = got
                    values["output"] = [str(v) for v in got]
            if values["status"] == RequestStatus.PROVING.value:
                outcomes.append(Outcome(row.id, "proving"))
            else:
                error = values["error"]
                outcomes.append(Outcome(row.id, "error" if error else "inferred", output, error))
            results.append((row.id, values))
        won = rows.finish_many(self.db, results, CLAIMABLE)
        bound.info("inference.done", batch=len(batch), seconds=round(seconds * len(batch), 6))
        return [
            o if w else Outcome(o.row_id, "skipped") for o, w in zip(outcomes, won, strict=True)
        ]

    def _infer(
        self, model: LoadedModel, x: npt.NDArray[np.float32], record: ModelRecord, bound: Any
    ) -> list[tuple[npt.NDArray[np.float64] | None, list[int] | InferenceError]]:
        """Each row's float output and its fixed-point output (or why there is none): one
        batch run; if that fails, each row alone, so a failure stays with its row."""
        if len(x) == 0:
            return []
        try:
            y = model.run_batch(x)
        except InferenceError as exc:
            if len(x) > 1:
                bound.warning("inference.batch_failed", rows=len(x), reason=str(exc))
        else:
            return list(zip(y, quantize_outputs(y, record), strict=True))
        alone: list[tuple[npt.NDArray[np.float64] | None, list[int] | InferenceError]] = []
        for row in x:
            try:
                floats = model.run(row)
                alone.append((floats, quantize_output(floats, record)))
            except InferenceError as exc:
                alone.append((None, exc))
        return alone

    def _claim(self, row_id: int) -> tuple[InferenceRequest, ModelRecord | None] | None:
        return rows.claim(self.db, row_id, CLAIMABLE, "attempts")

    def _unserved(self, row_id: int, reason: str, bound: Any) -> Outcome:
        bound.warning("inference.unserved", reason=reason)
        won = rows.leave_unserved(self.db, row_id, CLAIMABLE, reason)
        return Outcome(row_id, "unserved" if won else "skipped", None, reason)

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
    """Celery entry point: takes a row id, never the row. Rows it ran in the same batch
    share its chain and Coordinator, so one wake-up covers them all."""
    service = _get_service()
    outcomes = service.run(row_id)
    for outcome in outcomes:
        if outcome.status == "proving":
            enqueue_proof(outcome.row_id)
    if any(o.status in ("inferred", "error") for o in outcomes):
        wake_relayer(service.db, service.settings.redis.url, row_id)
    return outcomes[0].status
