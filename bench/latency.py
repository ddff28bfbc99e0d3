"""Latency benchmark: the whole local stack against anvil with 1 s blocks.

Reports, for N requests sent at random moments within blocks:
  - blocks from request to callback (p50, p99); target p50 = 1, p99 <= 2
  - the node's off-chain overhead = (tx broadcast - log seen) - inference time,
    as a fraction of the block time (p50, p99); target p50 <= 5 %
  - bare onnxruntime inference time of the same model in this process, as a reference
    next to the worker's measured inference time.

    .venv/bin/python bench/latency.py [--requests 40] [--block-time 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracle.chain.client import CoordinatorClient, connect
from oracle.db import Database, InferenceRequest, Transaction
from oracle.dev.requester import Requester
from oracle.dev.stack import LocalStack
from oracle.fixedpoint import to_fixed
from oracle.models.registration import register_model
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT

MODEL = ROOT / "models" / "example_mlp.onnx"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def bare_onnxruntime_s(repeats: int = 2000) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    x = np.array([[0.1, -0.2, 0.3, 0.4]], dtype=np.float32)
    for _ in range(100):
        session.run(None, {"input": x})
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {"input": x})
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--block-time", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with (
        tempfile.TemporaryDirectory(prefix="oracle-bench-") as tmp,
        LocalStack(Path(tmp), block_time=args.block_time) as stack,
    ):
        settings = stack.settings()
        w3 = connect(settings.chain.rpc_url)
        coordinator = CoordinatorClient(w3, settings.coordinator_address())
        db = Database(settings.db.url)
        model_id, _ = register_model(
            db, ArtifactStore(settings.store.path), coordinator, stack.owner, MODEL, 16, 16
        )
        stack.serve(model_id)
        requester = Requester.from_settings(settings)
        sent: list[tuple[int, int]] = []
        for _ in range(args.requests):
            time.sleep(float(rng.uniform(0.2, 1.3)) * args.block_time)  # land anywhere in a block
            values = [to_fixed(float(v), 16) for v in rng.uniform(-1, 1, 4)]
            sent.append(requester.submit(model_id, values, 0, 300_000))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(requester.result(rid)[0] for rid, _ in sent):
                break
            time.sleep(0.2)
        fulfilled = coordinator.contract.events.InferenceFulfilled().get_logs(from_block=0)
        fulfil_block = {int(e["args"]["requestId"]): int(e["blockNumber"]) for e in fulfilled}
        blocks = [fulfil_block[rid] - blk for rid, blk in sent if rid in fulfil_block]
        overheads: list[float] = []
        inference: list[float] = []
        with db.session() as s:
            # Rows and transactions read separately: a join would let InferenceRequest's
            # ``fulfilled_block`` column_property correlate its subquery's FROM away.
            rows = list(s.scalars(select(InferenceRequest)))
            tx_ids = [r.fulfil_tx_id for r in rows if r.fulfil_tx_id is not None]
            txs = {
                t.id: t for t in s.scalars(select(Transaction).where(Transaction.id.in_(tx_ids)))
            }
            for row in rows:
                tx = txs.get(row.fulfil_tx_id) if row.fulfil_tx_id is not None else None
                if tx is None or tx.broadcast_at is None or row.inference_s is None:
                    continue
                total = (tx.broadcast_at - row.seen_at).total_seconds()
                overheads.append(total - row.inference_s)
                inference.append(row.inference_s)
    bare = bare_onnxruntime_s()
    bt = args.block_time
    print(f"requests sent: {len(sent)}, fulfilled: {len(blocks)}")
    print(
        f"blocks request->callback: p50 {pct(blocks, 50):.0f}, p99 {pct(blocks, 99):.0f}, "
        f"max {max(blocks)}   (targets: p50 = 1, p99 <= 2)"
    )
    print(
        f"off-chain overhead: p50 {pct(overheads, 50) * 1000:.1f} ms = "
        f"{pct(overheads, 50) / bt:.1%} of a block, p99 {pct(overheads, 99) * 1000:.1f} ms = "
        f"{pct(overheads, 99) / bt:.1%}   (target: p50 <= 5%)"
    )
    print(
        f"worker inference p50 {statistics.median(inference) * 1e6:.0f} us vs bare onnxruntime "
        f"{bare * 1e6:.1f} us: ratio {statistics.median(inference) / bare:.2f}"
    )


if __name__ == "__main__":
    main()
