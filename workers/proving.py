"""The proving stage (Zk and Optimistic modes): one inferred request row in, an EZKL proof
(or, for an optimistic answer not yet posted, only the circuit's output) out.

Optimistic mode uses the circuit twice: before posting, the circuit's output for the exact
on-chain input is computed without a proof (a witness, fast) and posted with a bond; if that
answer is challenged, the row comes back here (``challenged``, ahead of other jobs) and is
proven, checking that the proof's output is the one posted.

The inference worker has already checked the input and stored onnxruntime's float output
as ``reference_output``; this stage runs the circuit on the request's exact on-chain
integers, proves, verifies the proof locally, and posts the *circuit's* output (the
only output the verifier will accept), recording how far it is from the float output.

Idempotent like inference: a row is claimed with a conditional update that counts
``proof_attempts``; past ``worker.max_attempts`` the request gets an error answer. A
prover killed mid-proof leaves the row ``proving``: Celery redelivers the job
(``reject_on_worker_lost``) and, failing that, the listener re-dispatches rows whose
claim is older than ``zk.proof_timeout_s``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from celery import Task
from celery.signals import worker_process_init

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.db.models import utcnow
from oracle.errors import ModelError, ProofError
from oracle.models import zk
from oracle.models.circuits import check_circuit, srs_dir
from oracle.models.remote import SharedStore, shared_store
from oracle.models.store import ArtifactStore
from oracle.settings import Settings
from oracle.types import Mode, RequestStatus
from workers import rows
from workers.app import PROOF_TASK, app
from workers.wake import wake_relayer

log = structlog.get_logger(__name__)

_PROVING = (RequestStatus.PROVING.value,)
_CLAIMABLE = (RequestStatus.PROVING.value, RequestStatus.CHALLENGED.value)


@dataclass(frozen=True)
class ProofOutcome:
    row_id: int
    status: str  # "proved", "error", "unserved" or "skipped"
    output: list[int] | None = None
    error: str | None = None
    deviation: float | None = None


def max_deviation(output: list[int], scale: int, reference: list[float]) -> float:
    """Largest |circuit output - onnxruntime float output|, in model units."""
    if len(output) != len(reference):
        return float("inf")
    return max(
        (abs(q / (1 << scale) - r) for q, r in zip(output, reference, strict=True)), default=0.0
    )


class ProverCache:
    """One :class:`zk.Prover` per model for the life of the worker process; the artifacts'
    hashes are checked against the manifest when a model is first loaded."""

    def __init__(
        self, store: ArtifactStore, workdir: Path, shared: SharedStore | None = None
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.shared = shared  # fills ``store`` (this host's cache) by hash when set
        self._provers: dict[str, tuple[zk.Prover, bool]] = {}
        self._lock = threading.Lock()

    def get(self, record: ModelRecord) -> tuple[zk.Prover, bool]:
        """(prover, whether it uses an insecure development SRS) for ``record``'s circuit,
        found by its ONNX hash; a circuit built with other scales than the record's is refused."""
        with self._lock:
            cached = self._provers.get(record.model_id)
            if cached is None:
                if self.shared is not None:
                    self.shared.circuit(record.onnx_hash)
                files, manifest = check_circuit(self.store, record.onnx_hash)
                scales = (manifest.input_scale, manifest.output_scale)
                if scales != (record.input_scale, record.output_scale):
                    raise ModelError(
                        f"the circuit for {record.onnx_hash} has scales {scales}, model "
                        f"{record.model_id} has {(record.input_scale, record.output_scale)}"
                    )
                prover = zk.Prover(files, srs_dir(self.store) / manifest.srs, self.workdir)
                cached = (prover, manifest.dev_srs)
                self._provers[record.model_id] = cached
            return cached


class ProvingService:
    """Proves one request; plain code so it can be tested without Celery."""

    def __init__(self, settings: Settings, db: Database, provers: ProverCache) -> None:
        self.settings = settings
        self.db = db
        self.provers = provers

    def run(self, row_id: int) -> ProofOutcome:
        claimed = self._claim(row_id)
        if claimed is None:
            return ProofOutcome(row_id, "skipped")
        row, record = claimed
        bound = log.bind(request_pk=row_id, request_id=row.request_id, model_id=row.model_id)
        if row.proof_attempts > self.settings.worker.max_attempts:
            bound.warning("proving.poison", attempts=row.proof_attempts)
            return self._fail(
                row_id, f"proof failed: gave up after {row.proof_attempts - 1} attempts"
            )
        try:
            if record is None:
                raise ModelError(f"model {row.model_id} is not in the local registry")
            prover, dev_srs = self.provers.get(record)
        except (ModelError, ProofError) as exc:
            # Not held here: left for a node that holds the circuit, never an error answer.
            bound.warning("proving.unserved", reason=str(exc))
            won = rows.leave_unserved(self.db, row_id, _PROVING, f"circuit unavailable: {exc}")
            return ProofOutcome(row_id, "unserved" if won else "skipped")
        if dev_srs:
            bound.warning("proving.dev_srs", warning=zk.DEV_SRS_WARNING)
        if row.mode == Mode.OPTIMISTIC and row.claim_node is None:
            return self._circuit_output(row, prover, bound)
        try:
            proof = prover.prove([int(v) for v in row.input], tag=f"{row_id}-{os.getpid()}")
        except ProofError as exc:
            bound.error("proving.failed", reason=str(exc))
            reason = str(exc)
            if not reason.startswith("input is not exactly representable"):
                reason = "proof failed: the circuit rejected this input"
            return self._fail(row_id, reason)
        if row.claim_node is not None and [str(v) for v in proof.output] != list(row.output or []):
            # Our posted answer is not what the circuit proves: nothing can save the bond.
            bound.error("proving.posted_output_unprovable", proved=proof.output, posted=row.output)
            return self._fail(row_id, "posted optimistic output differs from the circuit's")
        if len(proof.output) != record.output_length:
            # The Coordinator refuses a successful answer of the wrong length; answer with an
            # error instead, so the consumer hears back (and is refunded).
            bound.error("proving.bad_output_length", got=len(proof.output))
            return self._fail(
                row_id,
                f"proof failed: circuit output length {len(proof.output)}, "
                f"registry says {record.output_length}",
            )
        deviation = max_deviation(
            proof.output,
            prover.info.output_scale,
            [float(v) for v in (row.reference_output or [])],
        )
        bound.info(
            "proving.done",
            prove_s=round(proof.prove_s, 4),
            witness_s=round(proof.witness_s, 4),
            verify_s=round(proof.verify_s, 4),
            deviation=deviation,
            proof_bytes=len(proof.proof),
        )
        return self._finish(row_id, proof, deviation)

    def _circuit_output(self, row: InferenceRequest, prover: zk.Prover, bound: Any) -> ProofOutcome:
        """An optimistic answer to post: the circuit's output, no proof (yet)."""
        started = time.perf_counter()
        try:
            output = prover.circuit_output(
                [int(v) for v in row.input], tag=f"{row.id}-{os.getpid()}"
            )
        except ProofError as exc:
            bound.error("proving.witness_failed", reason=str(exc))
            return self._fail(row.id, "model failed: the circuit rejected this input")
        deviation = max_deviation(
            output, prover.info.output_scale, [float(v) for v in (row.reference_output or [])]
        )
        bound.info(
            "proving.circuit_output",
            seconds=round(time.perf_counter() - started, 4),
            deviation=deviation,
        )
        won = rows.finish(
            self.db,
            row.id,
            _PROVING,
            status=RequestStatus.INFERRED.value,
            output=[str(v) for v in output],
            circuit_deviation=deviation,
        )
        return ProofOutcome(row.id, "inferred" if won else "skipped", output, None, deviation)

    def _claim(self, row_id: int) -> tuple[InferenceRequest, ModelRecord | None] | None:
        return rows.claim(
            self.db,
            row_id,
            _CLAIMABLE,
            "proof_attempts",
            status=RequestStatus.PROVING.value,
            proving_at=utcnow(),
        )

    def _finish(self, row_id: int, proof: zk.Proof, deviation: float) -> ProofOutcome:
        won = rows.finish(
            self.db,
            row_id,
            _PROVING,
            status=RequestStatus.PROVED.value,
            output=[str(v) for v in proof.output],
            proof=proof.proof,
            circuit_deviation=deviation,
            prove_s=proof.prove_s,
            proved_at=utcnow(),
        )
        if not won:
            return ProofOutcome(row_id, "skipped")
        return ProofOutcome(row_id, "proved", proof.output, None, deviation)

    def _fail(self, row_id: int, reason: str) -> ProofOutcome:
        """Answer with an error (no proof): that refunds the consumer's Zk or Optimistic
        premium. Once an optimistic answer of ours is posted no error answer is possible:
        the row is abandoned (the answer will be slashed)."""
        with self.db.session() as s:
            row = s.get(InferenceRequest, row_id)
            posted = row is not None and row.claim_node is not None
        if posted:
            won = rows.finish(
                self.db, row_id, _PROVING, status=RequestStatus.ABANDONED.value, error=reason
            )
            return ProofOutcome(row_id, "error" if won else "skipped", None, reason)
        won = rows.finish(
            self.db,
            row_id,
            _PROVING,
            status=RequestStatus.INFERRED.value,
            output=None,
            error=reason,
        )
        return ProofOutcome(row_id, "error" if won else "skipped", None, reason)


# -- Celery wiring -----------------------------------------------------------------------
_service: ProvingService | None = None


def _get_service() -> ProvingService:
    global _service  # noqa: PLW0603 - one service per worker process, by design
    if _service is None:
        settings: Settings = app.conf.oracle_settings
        store = ArtifactStore(Path(settings.store.path))
        workdir = Path(settings.store.path) / "tmp" / f"prover-{os.getpid()}"
        provers = ProverCache(store, workdir, shared_store(settings.store))
        _service = ProvingService(settings, Database(settings.db.url), provers)
    return _service


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    global _service  # noqa: PLW0603
    _service = None


@app.task(name=PROOF_TASK, **rows.ROW_TASK_OPTIONS)
def run_proof(self: Task, row_id: int) -> str:
    """Celery entry point: takes a row id, never the row."""
    service = _get_service()
    started = time.perf_counter()
    outcome = service.run(row_id)
    if outcome.status not in ("skipped", "unserved"):
        wake_relayer(service.db, service.settings.redis.url, row_id)
    log.debug("proving.task_done", request_pk=row_id, seconds=time.perf_counter() - started)
    return outcome.status
