"""onnxruntime sessions, loaded once per worker process and keyed by ONNX hash.

A model exported with a fixed batch of one (``[1, n]``, as this project's models are) also
gets a batch session: the same graph with the first dimension of its input and output made
symbolic, so requests that arrive together run as one ``session.run``. It is used only if,
on a probe batch at load time, it gives bit for bit what the batch-of-one session gives
row by row; otherwise rows run one by one (same results, no batching).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from oracle.errors import InferenceError, ModelError

Provider = Literal["auto", "cpu", "cuda"]


def choose_providers(preference: Provider) -> list[str]:
    """CUDA when asked for or available (``auto``), always with the CPU as fallback."""
    available = ort.get_available_providers()
    if preference == "cpu":
        return ["CPUExecutionProvider"]
    if preference == "cuda" and "CUDAExecutionProvider" not in available:
        raise InferenceError(
            "worker.provider is 'cuda' but this onnxruntime has no CUDA provider "
            "(install onnxruntime-gpu on a GPU host)"
        )
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


PROBE_ROWS = 4  # rows of the load-time probe that decides whether a model batches


@dataclass
class LoadedModel:
    onnx_hash: str
    session: ort.InferenceSession
    input_name: str
    input_shape: tuple[int, ...]
    batch_session: ort.InferenceSession | None = None  # see the module docstring

    def run(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        feed = values.reshape(self.input_shape).astype(np.float32, copy=False)
        return _run(self.session, self.input_name, feed).reshape(-1)

    def run_batch(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Outputs of ``rows`` (one input per row), one flat output per row: one
        ``session.run`` with the batch session, else one per row."""
        n = rows.shape[0]
        if self.batch_session is None or n == 1:
            return np.stack([self.run(row) for row in rows]) if n else np.empty((0, 0))
        feed = rows.reshape((n, *self.input_shape[1:])).astype(np.float32, copy=False)
        return _run(self.batch_session, self.input_name, feed).reshape(n, -1)


def _run(
    session: ort.InferenceSession, name: str, feed: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    try:
        outputs = session.run(None, {name: feed})
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise InferenceError(f"onnxruntime failed: {type(exc).__name__}") from exc
    return np.asarray(outputs[0], dtype=np.float64)


class SessionCache:
    """Holds one session per ONNX file (by its SHA-256) for the life of the process; a file is
    loaded only if its bytes hash to the ONNX hash the registry record names."""

    def __init__(self, preference: Provider = "auto") -> None:
        self._preference = preference
        self._sessions: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return choose_providers(self._preference)

    def get(self, onnx_hash: str, path: Path, input_length: int) -> LoadedModel:
        with self._lock:
            cached = self._sessions.get(onnx_hash)
            if cached is not None:
                return cached
            loaded = self._load(onnx_hash, path, input_length)
            self._sessions[onnx_hash] = loaded
            return loaded

    def _load(self, onnx_hash: str, path: Path, input_length: int) -> LoadedModel:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"model file {onnx_hash} is unreadable: {exc.strerror}") from exc
        digest = "0x" + hashlib.sha256(raw).hexdigest()
        if digest != onnx_hash.lower():
            raise ModelError(f"model file {path.name} hashes to {digest}, not {onnx_hash}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(raw, sess_options=options, providers=self.providers)
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load {onnx_hash}: {exc}") from exc
        inp = session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in inp.shape)
        if int(np.prod(shape)) != input_length:
            # The registry record is what the chain agreed to; fall back to a flat batch of 1.
            shape = (1, input_length)
        loaded = LoadedModel(onnx_hash, session, inp.name, shape)
        loaded.batch_session = self._batch_session(raw, loaded, options)
        return loaded

    def _batch_session(
        self, raw: bytes, single: LoadedModel, options: ort.SessionOptions
    ) -> ort.InferenceSession | None:
        """The batch session for a ``[1, ...]`` model, if it agrees with ``single``."""
        if single.input_shape[0] != 1 or len(single.session.get_inputs()) != 1:
            return None
        try:
            model = onnx.load_from_string(raw)
            ends = [*model.graph.input[:1], *model.graph.output[:1]]
            for value in ends:
                dim = value.type.tensor_type.shape.dim[0]
                if dim.dim_value not in (0, 1):
                    return None
                dim.ClearField("dim_value")
                dim.dim_param = "batch"
            batch = ort.InferenceSession(
                model.SerializeToString(), sess_options=options, providers=self.providers
            )
            probe = np.random.default_rng(0).uniform(-1, 1, (PROBE_ROWS, *single.input_shape[1:]))
            probe = probe.astype(np.float32)
            got = np.asarray(batch.run(None, {single.input_name: probe})[0], dtype=np.float64)
            want = np.stack([single.run(row) for row in probe])
        except Exception:  # any failure: this model runs row by row
            return None
        if got.reshape(PROBE_ROWS, -1).shape != want.shape or not np.array_equal(
            got.reshape(want.shape), want
        ):
            return None
        return batch
