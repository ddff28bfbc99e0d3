"""The artifact store: model files named by their SHA-256, under one directory that several
hosts can share; and reading an ONNX graph's flat input and output lengths."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from oracle.errors import ModelError
from oracle.types import ModelId


@dataclass(frozen=True)
class ModelShape:
    input_length: int
    output_length: int


def model_id_of(path: Path) -> ModelId:
    """The on-chain model id: SHA-256 of the ONNX file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return ModelId("0x" + h.hexdigest())


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
    """Files named by their hash under one directory (shareable between hosts)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, model_id: str) -> Path:
        return self.root / f"{model_id.lower().removeprefix('0x')}.onnx"

    def put(self, src: Path) -> tuple[ModelId, Path]:
        model_id = model_id_of(src)
        dest = self.path_for(model_id)
        if dest.exists() and model_id_of(dest) == model_id:
            return model_id, dest
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return model_id, dest
