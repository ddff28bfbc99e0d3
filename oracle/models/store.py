"""The artifact store: model files named by their SHA-256 (the ONNX hash, not the model id),
under one directory that several hosts can share; and reading an ONNX graph's flat input
and output lengths."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from oracle.errors import ModelError
from oracle.types import OnnxHash


@dataclass(frozen=True)
class ModelShape:
    input_length: int
    output_length: int


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex without ``0x``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def onnx_hash_of(path: Path) -> OnnxHash:
    """SHA-256 of the ONNX file's bytes: the store's key, and the ``onnxHash`` of the on-chain
    record (the model id is derived from it, see ``registration.content_model_id``)."""
    return OnnxHash("0x" + sha256_file(path))


def inspect_onnx(path: Path) -> ModelShape:
    """Read flat input and output lengths from the graph (one input, one output)."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelError(f"{path} is not a valid ONNX model: {exc}") from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) < 1:
        raise ModelError(
            f"{path}: expected one input tensor, found {len(inputs)}; and at least one output"
        )

    def flat_len(value_info: onnx.ValueInfoProto, what: str) -> int:
        dims = value_info.type.tensor_type.shape.dim
        n = 1
        for i, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                n *= d.dim_value
            elif i != 0:
                raise ModelError(f"{path}: {what} dimension {i} is not fixed")
        return n

    return ModelShape(flat_len(inputs[0], "input"), flat_len(graph.output[0], "output"))


class ArtifactStore:
    """ONNX files named by their SHA-256 under one directory (shareable between hosts)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, onnx_hash: str) -> Path:
        """Where the file whose SHA-256 is ``onnx_hash`` lives (whether or not it is there)."""
        return self.root / f"{onnx_hash.lower().removeprefix('0x')}.onnx"

    def put(self, src: Path) -> tuple[OnnxHash, Path]:
        """Copy ``src`` into the store; returns its ONNX hash and its path there."""
        onnx_hash = onnx_hash_of(src)
        dest = self.path_for(onnx_hash)
        if dest.exists() and onnx_hash_of(dest) == onnx_hash:
            return onnx_hash, dest
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return onnx_hash, dest
