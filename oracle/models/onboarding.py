"""Onboarding a model for Zk mode: circuit, keys, verifier contract, registry record.

    oracle model register MODEL.onnx --zk --calibration DATA.json (--srs FILE | --dev-srs)

Every artifact lands in the store addressed by hash: the circuit under
``zk/<onnx hash>/`` (the ONNX file's SHA-256, not the model id, which also depends on the
verifier's code; settings, compiled circuit, keys, verifier source and build, and a
``manifest.json`` with their SHA-256), the SRS under ``srs/<sha256>.srs``. The circuit is
built in a scratch directory and renamed into place only when complete, so a crash leaves
nothing half-made, and a second run finds the manifest and changes nothing. The verifier's
code is known before it is deployed, so the model id is too: a second run finds the record
on chain and deploys and registers nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from eth_account.signers.local import LocalAccount
from web3 import Web3

from oracle.chain.compile import compile_standalone
from oracle.db import Database
from oracle.errors import ModelError, ProofError
from oracle.models import zk
from oracle.models.circuits import (
    MANIFEST,
    VERIFIER_ARTIFACT,
    Manifest,
    check_circuit,
    circuit_dir,
    srs_dir,
)
from oracle.models.registration import (
    ZkRecord,
    content_model_id,
    register_model,
    verifier_code_hash,
)
from oracle.models.store import ArtifactStore, inspect_onnx, onnx_hash_of, sha256_file
from oracle.types import ModelId, OnnxHash

log = structlog.get_logger(__name__)

EIP170_LIMIT = 24_576


@dataclass(frozen=True)
class SrsChoice:
    """``path`` for a real SRS the operator provides, or ``dev`` for a local insecure one."""

    path: Path | None = None
    dev: bool = False

    def __post_init__(self) -> None:
        if (self.path is None) == (not self.dev):
            raise ModelError("give exactly one of --srs FILE or --dev-srs")


@dataclass(frozen=True)
class Onboarded:
    model_id: ModelId
    verifier: str
    newly_registered: bool
    manifest: Manifest
    circuit_dir: Path


def _store_srs(store: ArtifactStore, src: Path) -> Path:
    digest = sha256_file(src)
    dest = srs_dir(store) / f"{digest}.srs"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest


def build(
    store: ArtifactStore,
    onnx_path: Path,
    calibration: Path,
    srs: SrsChoice,
    params: zk.CircuitParams,
    progress: zk.Progress,
) -> tuple[OnnxHash, Manifest]:
    """Build (or find) the circuit for ``onnx_path``; no chain access. Returns the file's ONNX
    hash (the circuit's key in the store) and the manifest."""
    onnx_hash = onnx_hash_of(onnx_path)
    final = circuit_dir(store, onnx_hash)
    if (final / MANIFEST).exists():
        _, manifest = check_circuit(store, onnx_hash)
        progress(f"circuit for ONNX file {onnx_hash} already built: nothing to do")
        return onnx_hash, manifest
    if not calibration.is_file():
        raise ModelError(f"calibration data {calibration} is not a file")
    _check_calibration(calibration, inspect_onnx(onnx_path).input_length)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        files = zk.CircuitFiles(scratch)
        info = zk.build_circuit(onnx_path, calibration, files, params, progress)
        if srs.dev:
            progress(f"generating a development SRS for 2^{info.logrows} rows")
            progress(zk.DEV_SRS_WARNING)
            made = scratch / "dev.srs"
            zk.generate_dev_srs(made, info.logrows)
            srs_path = _store_srs(store, made)
            made.unlink()
        elif srs.path is not None:
            have = zk.srs_logrows(srs.path)
            if have < info.logrows:
                raise ProofError(
                    f"SRS {srs.path} covers 2^{have} rows; the circuit needs 2^{info.logrows}"
                )
            srs_path = _store_srs(store, srs.path)
        progress(f"key setup (estimated prover memory {info.est_prover_memory_mb} MB)")
        zk.setup_keys(files, srs_path)
        progress("rendering the Solidity verifier")
        zk.write_verifier(files, srs_path)
        progress("compiling the verifier with solc (npm)")
        artifact = compile_standalone(files.verifier_sol, zk.VERIFIER_CONTRACT)
        runtime = len(artifact["deployedBytecode"]) // 2 - 1
        if runtime > EIP170_LIMIT:
            raise ProofError(
                f"the verifier is {runtime} bytes, over the EIP-170 limit of {EIP170_LIMIT} "
                f"by {runtime - EIP170_LIMIT}; lower zk.num_inner_cols or the model size"
            )
        (scratch / VERIFIER_ARTIFACT).write_text(json.dumps(artifact))
        names = [p.name for p in files.hashed()] + [VERIFIER_ARTIFACT]
        manifest = Manifest(
            onnx_hash=onnx_hash,
            logrows=info.logrows,
            input_scale=info.input_scale,
            output_scale=info.output_scale,
            srs=srs_path.name,
            dev_srs=srs.dev,
            files={name: sha256_file(scratch / name) for name in names},
            verifier_runtime_bytes=runtime,
        )
        manifest.write(scratch)
        os.replace(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return onnx_hash, manifest


def _check_calibration(path: Path, input_length: int) -> None:
    try:
        data = json.loads(path.read_text())
        rows = data["input_data"]
        flat = [float(v) for row in rows for v in row]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f'{path}: calibration data must be JSON {{"input_data": [[numbers, ...]]}} ({exc})'
        ) from exc
    if not flat or len(flat) % input_length:
        raise ModelError(
            f"{path}: {len(flat)} calibration values is not a whole number of "
            f"{input_length}-value inputs"
        )


def onboard(
    db: Database | None,
    store: ArtifactStore,
    coordinator: Any,
    account: LocalAccount,
    onnx_path: Path,
    calibration: Path,
    srs: SrsChoice,
    params: zk.CircuitParams,
    progress: zk.Progress = lambda _: None,
) -> Onboarded:
    """Build the circuit, deploy its verifier, register the model. Idempotent: the model id
    follows from the file, the verifier's code (known before deploying) and the scales, so a
    second run finds the record and deploys nothing."""
    from oracle.chain.deploy import deploy_artifact

    onnx_hash, manifest = build(store, onnx_path, calibration, srs, params, progress)
    files, _ = check_circuit(store, onnx_hash)
    artifact = json.loads((files.root / VERIFIER_ARTIFACT).read_text())
    runtime = bytes.fromhex(str(artifact["deployedBytecode"]).removeprefix("0x"))
    shape = inspect_onnx(onnx_path)
    model_id = content_model_id(
        onnx_hash,
        "0x" + Web3.keccak(runtime).hex().removeprefix("0x"),
        shape.input_length,
        shape.output_length,
        manifest.input_scale,
        manifest.output_scale,
    )
    onchain = coordinator.model(model_id)
    w3: Web3 = coordinator.w3
    verifier: str
    if onchain["exists"]:
        # Same id: a verifier with exactly this code is already registered for this model.
        verifier = Web3.to_checksum_address(str(onchain["verifier"]))
        if verifier_code_hash(w3, verifier) != onchain["verifier_code_hash"]:
            raise ModelError(
                f"model {model_id}'s verifier {verifier} no longer has its registered code"
            )
    else:
        progress("deploying the verifier")
        verifier = deploy_artifact(w3, account, artifact)
    if manifest.dev_srs:
        log.warning("zk.dev_srs", model_id=model_id, warning=zk.DEV_SRS_WARNING)
    registered, created = register_model(
        db,
        store,
        coordinator,
        account,
        onnx_path,
        manifest.input_scale,
        manifest.output_scale,
        zk=ZkRecord(verifier=verifier),
    )
    if registered != model_id:
        raise ModelError(
            f"verifier {verifier} was deployed with other code than the circuit's artifact: "
            f"model id {registered}, expected {model_id}"
        )
    return Onboarded(model_id, verifier, created, manifest, files.root)
