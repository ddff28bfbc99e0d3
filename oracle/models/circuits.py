"""Where a model's Zk circuit lives in the artifact store, and its manifest.

The layout only (no EZKL, no chain): read by the prover and inference workers and the shared
store without importing what onboarding needs to build a circuit (:mod:`oracle.models.onboarding`).

    <store>/zk/<onnx sha256>/   settings, compiled circuit, keys, verifier source and build,
                                and manifest.json with the SHA-256 of each
    <store>/srs/<sha256>.srs    structured reference strings, by content
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from oracle.errors import ModelError
from oracle.models import zk
from oracle.models.store import ArtifactStore, sha256_file

MANIFEST = "manifest.json"
VERIFIER_ARTIFACT = "Verifier.json"


@dataclass(frozen=True)
class Manifest:
    onnx_hash: str
    logrows: int
    input_scale: int
    output_scale: int
    srs: str  # file name under <store>/srs
    dev_srs: bool
    files: dict[str, str]  # name -> sha256
    verifier_runtime_bytes: int

    @classmethod
    def read(cls, circuit_dir: Path) -> Manifest:
        data = json.loads((circuit_dir / MANIFEST).read_text())
        if "model_id" in data:  # written before model ids were content-addressed
            data["onnx_hash"] = data.pop("model_id")
        return cls(**data)

    def write(self, circuit_dir: Path) -> None:
        (circuit_dir / MANIFEST).write_text(json.dumps(asdict(self), indent=1) + "\n")


def circuit_dir(store: ArtifactStore, onnx_hash: str) -> Path:
    """Where the circuit of the ONNX file with SHA-256 ``onnx_hash`` lives."""
    return store.root / "zk" / onnx_hash.lower().removeprefix("0x")


def srs_dir(store: ArtifactStore) -> Path:
    return store.root / "srs"


def check_circuit(store: ArtifactStore, onnx_hash: str) -> tuple[zk.CircuitFiles, Manifest]:
    """The circuit files of the ONNX file ``onnx_hash``, each checked against the manifest's
    hash."""
    root = circuit_dir(store, onnx_hash)
    if not (root / MANIFEST).exists():
        raise ModelError(f"no zk circuit for ONNX file {onnx_hash} in the store ({root})")
    manifest = Manifest.read(root)
    for name, digest in manifest.files.items():
        if sha256_file(root / name) != digest:
            raise ModelError(f"zk artifact {root / name} does not match its manifest hash")
    return zk.CircuitFiles(root), manifest
