"""Model registry: the artifact store addressed by hash, and on-chain registration."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from sqlalchemy import select

from oracle.db import Database, ModelRecord
from oracle.errors import ModelError
from oracle.types import ModelId


@dataclass(frozen=True)
class ZkRecord:
    """Where a Zk model's circuit lives and which verifier checks it."""

    verifier: str
    circuit_dir: Path
    srs: Path
    dev_srs: bool


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


def upsert_model_record(db: Database, record: ModelRecord) -> None:
    """Insert the local copy of a registry record; records are immutable once written."""
    with db.session() as s:
        existing = s.scalars(
            select(ModelRecord).where(ModelRecord.model_id == record.model_id)
        ).first()
        if existing is None:
            s.add(record)
            return
        existing.artifact_path = record.artifact_path
        if record.zk_path is not None:
            existing.verifier = record.verifier
            existing.zk_path = record.zk_path
            existing.srs_path = record.srs_path
            existing.dev_srs = record.dev_srs


def get_model_record(db: Database, model_id: str) -> ModelRecord | None:
    with db.session() as s:
        return s.scalars(
            select(ModelRecord).where(ModelRecord.model_id == model_id.lower())
        ).first()


def register_model(
    db: Database | None,
    store: ArtifactStore,
    coordinator: Any,
    account: Any,
    path: Path,
    input_scale: int,
    output_scale: int,
    zk: ZkRecord | None = None,
) -> tuple[ModelId, bool]:
    """Store ``path`` by hash and register it on chain. Returns (model id, newly registered).

    Running it again changes nothing; a conflicting earlier registration is an error,
    because records are immutable (new settings are a new model). ``zk`` carries the
    verifier and circuit artifacts of a model onboarded for Zk mode.
    """
    from oracle.chain.deploy import send

    if not 0 <= input_scale <= 64 or not 0 <= output_scale <= 64:
        raise ModelError("scales must be between 0 and 64 bits")
    shape = inspect_onnx(path)
    model_id, stored = store.put(path)
    onchain = coordinator.model(model_id)
    created = False
    if onchain["exists"]:
        wanted = (shape.input_length, shape.output_length, input_scale, output_scale)
        have = (
            onchain["input_length"],
            onchain["output_length"],
            onchain["input_scale"],
            onchain["output_scale"],
        )
        if tuple(int(v) for v in have) != wanted:
            raise ModelError(
                f"model {model_id} is already registered with (in, out, in_scale, out_scale) = "
                f"{tuple(int(v) for v in have)}, not {wanted}; records are immutable "
                "(new weights or settings are a new model: a new ONNX file)"
            )
        onchain_verifier = str(onchain["verifier"])
        if (zk is None) != (int(onchain_verifier, 16) == 0) or (
            zk is not None and onchain_verifier.lower() != zk.verifier.lower()
        ):
            raise ModelError(
                f"model {model_id} is already registered with verifier {onchain_verifier}, "
                f"not {zk.verifier if zk else 'none'}; records are immutable"
            )
    else:
        send(
            coordinator.w3,
            account,
            coordinator.contract.functions.registerModel(
                bytes.fromhex(model_id[2:]),
                shape.input_length,
                shape.output_length,
                input_scale,
                output_scale,
                zk.verifier if zk else "0x" + "00" * 20,
            ),
        )
        created = True
    if db is not None:
        upsert_model_record(
            db,
            ModelRecord(
                model_id=model_id,
                artifact_path=str(stored),
                input_length=shape.input_length,
                output_length=shape.output_length,
                input_scale=input_scale,
                output_scale=output_scale,
                owner=account.address,
                verifier=zk.verifier if zk else None,
                zk_path=str(zk.circuit_dir) if zk else None,
                srs_path=str(zk.srs) if zk else None,
                dev_srs=zk.dev_srs if zk else False,
            ),
        )
    return model_id, created
