"""onnxruntime sessions, loaded once per worker process and keyed by ONNX hash."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
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


@dataclass
class LoadedModel:
    onnx_hash: str
    session: ort.InferenceSession
    input_name: str
    input_shape: tuple[int, ...]

    def run(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        feed = values.reshape(self.input_shape).astype(np.float32, copy=False)
        try:
            outputs = self.session.run(None, {self.input_name: feed})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InferenceError(f"onnxruntime failed: {type(exc).__name__}") from exc
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1)


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
        return LoadedModel(onnx_hash, session, inp.name, shape)
