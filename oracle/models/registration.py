"""Registering a model: store its file by ONNX hash, record it on chain under its
content-addressed model id, mirror it in the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from sqlalchemy import select
from web3 import Web3
from web3.logs import DISCARD

from oracle.db import Database, ModelRecord
from oracle.errors import ModelError
from oracle.models.store import ArtifactStore, inspect_onnx
from oracle.types import ModelId, model_id_from_bytes

MAX_SCALE = 64  # the Coordinator's bound on a model's fixed-point scales (bits)
ZERO_HASH = "0x" + "00" * 32
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class ZkRecord:
    """Which verifier checks a Zk model's proofs (its circuit lives in the artifact store,
    found by ONNX hash; see :mod:`oracle.models.onboarding`)."""

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


def content_model_id(
    onnx_sha256: str,
    verifier_code_hash: str,
    input_length: int,
    output_length: int,
    input_scale: int,
    output_scale: int,
) -> ModelId:
    """The id the Coordinator gives this content: ``keccak256(abi.encode(onnxHash,
    verifierCodeHash, inputLength, outputLength, inputScale, outputScale))``.

    ``verifier_code_hash`` is the verifier's code hash (zero without a verifier), so a model id
    pins the file, the verifier code and the settings: nobody can register someone else's file
    under the id its owner will get unless with exactly the owner's content."""
    encoded = abi_encode(
        ["bytes32", "bytes32", "uint32", "uint32", "uint8", "uint8"],
        [
            _bytes32(onnx_sha256),
            _bytes32(verifier_code_hash),
            input_length,
            output_length,
            input_scale,
            output_scale,
        ],
    )
    return model_id_from_bytes(keccak(encoded))


def verifier_code_hash(w3: Any, verifier: str | None) -> str:
    """``verifier.codehash`` as the Coordinator reads it (zero hash for no verifier)."""
    if verifier is None or int(verifier, 16) == 0:
        return ZERO_HASH
    code = bytes(w3.eth.get_code(Web3.to_checksum_address(verifier)))
    if not code:
        raise ModelError(f"verifier {verifier} has no code")
    return "0x" + keccak(code).hex()


def _bytes32(text: str) -> bytes:
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes of hex, got {len(raw)}: {text!r}")
    return raw


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
    """Store ``path`` by its ONNX hash and register it on chain. Returns (model id, newly
    registered).

    The model id is content-addressed (:func:`content_model_id`): the same file, verifier code
    and settings always give the same id, so running it again changes nothing, and other
    settings are simply another model. ``zk`` carries the verifier of a model onboarded for Zk
    mode.
    """
    from oracle.chain.deploy import send

    if not 0 <= input_scale <= MAX_SCALE or not 0 <= output_scale <= MAX_SCALE:
        raise ModelError(f"scales must be between 0 and {MAX_SCALE} bits")
    shape = inspect_onnx(path)
    onnx_hash, stored = store.put(path)
    verifier = zk.verifier if zk else None
    code_hash = verifier_code_hash(coordinator.w3, verifier)
    model_id = content_model_id(
        onnx_hash, code_hash, shape.input_length, shape.output_length, input_scale, output_scale
    )
    onchain = coordinator.model(model_id)
    created = False
    if not onchain["exists"]:
        receipt = send(
            coordinator.w3,
            account,
            coordinator.contract.functions.registerModel(
                _bytes32(onnx_hash),
                shape.input_length,
                shape.output_length,
                input_scale,
                output_scale,
                verifier or ZERO_ADDRESS,
            ),
        )
        events = coordinator.contract.events.ModelRegistered().process_receipt(
            receipt, errors=DISCARD
        )
        # No event: the same content was registered by someone else meanwhile (a no-op).
        created = bool(events)
        for ev in events:
            chain_id = model_id_from_bytes(bytes(ev["args"]["modelId"]))
            if chain_id != model_id:
                raise ModelError(
                    f"the Coordinator registered {path} as {chain_id}, but its content gives "
                    f"{model_id}: the id rule of this node and of the contract disagree"
                )
        onchain = coordinator.model(model_id)
        if not onchain["exists"]:
            raise ModelError(f"model {model_id} is not registered after registerModel")
    if db is not None:
        upsert_model_record(
            db,
            ModelRecord(
                model_id=model_id,
                onnx_hash=onnx_hash,
                artifact_path=str(stored),
                input_length=shape.input_length,
                output_length=shape.output_length,
                input_scale=input_scale,
                output_scale=output_scale,
                owner=str(onchain["owner"]),
                verifier=verifier,
            ),
        )
    return model_id, created
