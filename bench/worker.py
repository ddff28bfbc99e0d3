"""Inference worker throughput: the worker's time per request against bare onnxruntime.

For each model, N queued request rows in a fresh database (SQLite by default), then the
inference service runs the job of every row in arrival order, as a worker process does
(claim, checks, fixed point, onnxruntime, result written by a conditional update; a row a
batch already ran is skipped by its own job). Measured in the same run:
  - worker time per request with micro-batching (``worker.batch_size``, default 32)
  - worker time per request one at a time (``batch_size`` 1: the path before batching)
  - bare onnxruntime per request in a batch of 32 (one ``session.run`` on 32 rows / 32),
    the reference; and bare onnxruntime on one row
The Celery hop (broker round trip, ack) and the relayer wake-up are outside both figures.

    .venv/bin/python bench/worker.py [--requests 512] [--batch-size 32] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from oracle.db import Database, InferenceRequest, ModelRecord
from oracle.models.store import ArtifactStore, inspect_onnx
from oracle.paths import ROOT
from oracle.settings import load_settings
from oracle.types import Mode, RequestStatus
from workers.inference import InferenceService
from workers.runtime import SessionCache

MODELS = [ROOT / "models" / "example_mlp.onnx", ROOT / "models" / "digits" / "digits_mlp.onnx"]
REFERENCE_BATCH = 32
MODEL_ID = "0x" + "be" * 32


def bare_s(onnx: Path, width: int, batch: int, repeats: int = 2000) -> float:
    """Seconds per row of one ``session.run`` on ``batch`` rows (1 thread, like a worker)."""
    model = SessionCache("cpu").get(*_hash_and_path(onnx), width)
    session = model.batch_session if batch > 1 else model.session
    if session is None:
        raise SystemExit(f"{onnx.name} has no batch session")
    x = np.random.default_rng(0).uniform(0, 1, (batch, width)).astype(np.float32)
    for _ in range(200):
        session.run(None, {model.input_name: x})
    started = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {model.input_name: x})
    return (time.perf_counter() - started) / repeats / batch


def _hash_and_path(onnx: Path) -> tuple[str, Path]:
    from oracle.models.store import onnx_hash_of

    return onnx_hash_of(onnx), onnx


@dataclass
class WorkerRun:
    per_request_s: float  # all jobs' time / requests
    batch_jobs: int  # jobs that ran rows (the rest found their row done)
    batch_job_s_per_row: float  # time of the jobs that ran rows / rows they ran
    skipped_job_s: float  # median time of a job that found its row done


def worker_s(
    onnx: Path, width: int, n: int, batch_size: int, work: Path, profile: bool
) -> WorkerRun:
    """The service running every row's job, in arrival order."""
    work.mkdir(parents=True)
    url = f"sqlite:///{work / 'node.db'}"
    db = Database(url)
    db.upgrade()
    settings = load_settings(
        db={"url": url},
        store={"path": str(work / "store")},
        worker={"provider": "cpu", "batch_size": batch_size},
    )
    onnx_hash, path = ArtifactStore(work / "store").put(onnx)
    out_len = inspect_onnx(onnx).output_length
    rng = np.random.default_rng(1)
    with db.session() as s:
        s.add(
            ModelRecord(
                model_id=MODEL_ID,
                onnx_hash=onnx_hash,
                artifact_path=str(path),
                input_length=width,
                output_length=out_len,
                input_scale=13,
                output_scale=13,
            )
        )
        for i in range(n + 1):
            s.add(
                InferenceRequest(
                    chain_id=31337,
                    coordinator="0x" + "c0" * 20,
                    request_id=i,
                    model_id=MODEL_ID,
                    consumer="0x" + "33" * 20,
                    input=[str(int(v)) for v in rng.integers(-(1 << 13), 1 << 13, width)],
                    mode=Mode.NONE,
                    callback_gas_limit=100_000,
                    fee="0",
                    block_number=1,
                    block_hash="0x" + "44" * 32,
                    tx_hash="0x" + "55" * 32,
                    log_index=i,
                    status=RequestStatus.QUEUED.value,
                )
            )
    service = InferenceService(settings, db, SessionCache("cpu"))
    service.run(1)  # load the session (the worker does this once per process)
    profiler = cProfile.Profile() if profile else None
    ran: list[tuple[float, int]] = []  # (seconds, rows) of jobs that ran rows
    skipped: list[float] = []
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for row_id in range(2, n + 2):
        job_started = time.perf_counter()
        outcomes = service.run(row_id)
        took = time.perf_counter() - job_started
        if outcomes[0].status == "skipped":
            skipped.append(took)
        else:
            ran.append((took, len(outcomes)))
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    if profiler:
        print(f"\n--- cProfile: {onnx.name}, batch_size {batch_size} ---")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    db.dispose()
    return WorkerRun(
        per_request_s=elapsed / n,
        batch_jobs=len(ran),
        batch_job_s_per_row=sum(t for t, _ in ran) / sum(k for _, k in ran),
        skipped_job_s=statistics.median(skipped) if skipped else 0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=REFERENCE_BATCH)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings
    print(
        f"| model | worker us/request (batch_size {args.batch_size}) | jobs that ran rows | "
        "of which: batch job us/row | skipped job us | worker us/request (batch_size 1) | "
        f"bare onnxruntime us/row (batch of {REFERENCE_BATCH}) | bare onnxruntime us (1 row) | "
        f"worker / bare (batch of {REFERENCE_BATCH}) | batching speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        for onnx in MODELS:
            width = inspect_onnx(onnx).input_length
            work = Path(tmp) / onnx.stem
            b = worker_s(
                onnx, width, args.requests, args.batch_size, work / "batched", args.profile
            )
            alone = worker_s(onnx, width, args.requests, 1, work / "alone", args.profile)
            ref = bare_s(onnx, width, REFERENCE_BATCH)
            one = bare_s(onnx, width, 1)
            print(
                f"| {onnx.name} | {b.per_request_s * 1e6:.1f} | {b.batch_jobs} | "
                f"{b.batch_job_s_per_row * 1e6:.1f} | {b.skipped_job_s * 1e6:.1f} | "
                f"{alone.per_request_s * 1e6:.1f} | {ref * 1e6:.2f} | {one * 1e6:.2f} | "
                f"{b.per_request_s / ref:,.0f} | {alone.per_request_s / b.per_request_s:.1f}x |"
            )


if __name__ == "__main__":
    main()
