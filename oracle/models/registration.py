"""Registering a model: store its file by hash, record it on chain, mirror it in the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from oracle.db import Database, ModelRecord
from oracle.errors import ModelError
from oracle.models.store import ArtifactStore, inspect_onnx
from oracle.types import ModelId


@dataclass(frozen=True)
class ZkRecord:
    """Which verifier checks a Zk model's proofs (its circuit lives in the artifact store,
    found by model id; see :mod:`oracle.models.onboarding`)."""

    verifier: str


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
        if record.verifier is not None:
            existing.verifier = record.verifier


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
            ),
        )
    return model_id, created
