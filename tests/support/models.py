"""Model files for the tests: the shipped example model, variants of it with their own
ONNX hash, circuits built once per session, and the training scripts loaded as modules."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from oracle.models.store import ArtifactStore
from oracle.paths import ROOT

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"
EXAMPLE_CALIBRATION = ROOT / "models" / "example_mlp.calibration.json"


@dataclass(frozen=True)
class ZkModel:
    onnx: Path
    onnx_hash: str  # the store's key for the file and its circuit (not the model id)


def onnx_variant(dest: Path, tag: str, weight_factor: float = 1.0) -> Path:
    """A copy of the example model with its own bytes (so its own ONNX hash); with a
    ``weight_factor`` other than 1 it is also a different function (a different circuit)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(EXAMPLE_MODEL))
    model.doc_string = f"test variant {tag}"
    if weight_factor != 1.0:
        for i, init in enumerate(model.graph.initializer):
            scaled = numpy_helper.to_array(init).astype(np.float32) * np.float32(weight_factor)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(scaled, init.name))
    onnx.save(model, str(dest))
    return dest


def build_zk_store(shared: Path) -> dict[str, Any]:
    """Circuits built with the dev SRS, once for the session's workers (under ``shared``):
    'a' and 'b' are different functions. Tests read it; they seed their own stores from it."""
    from oracle.models import onboarding, zk
    from oracle.models.store import onnx_hash_of

    with built_once(shared, "zkstore") as (root, build):
        root.mkdir(parents=True, exist_ok=True)
        store = ArtifactStore(root / "models")
        models: dict[str, Any] = {"root": store.root}
        for tag, factor in (("a", 1.0), ("b", 0.5)):
            path = root / f"zk_{tag}.onnx"
            if build:
                onnx_variant(path, tag, factor)
                onboarding.build(
                    store,
                    path,
                    EXAMPLE_CALIBRATION,
                    onboarding.SrsChoice(dev=True),
                    zk.CircuitParams(),
                    lambda _: None,
                )
            models[tag] = ZkModel(path, onnx_hash_of(path))
    return models


@contextmanager
def built_once(root: Path, key: str) -> Iterator[tuple[Path, bool]]:
    """``root / key``, and whether the caller must build it: one process at a time under a
    file lock, so the pytest-xdist workers of a session (which share ``root``) build each
    thing once and the others wait for it and reuse it."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    dest = root / key
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = dest / ".built"
        yield dest, not done.exists()
        dest.mkdir(parents=True, exist_ok=True)
        done.touch()


def shared_circuit(root: Path, onnx: Path, calibration: Path) -> Path:
    """An artifact store holding the circuit of ``onnx`` (dev SRS, default parameters), built
    once for the whole session under ``root``; copy it into a test's store with
    :func:`seed_from` and onboarding finds it built (it still registers and deploys)."""
    import hashlib

    from oracle.models import onboarding, zk

    key = hashlib.sha256(onnx.read_bytes() + calibration.read_bytes()).hexdigest()[:16]
    with built_once(root, key) as (dest, build):
        if build:
            onboarding.build(
                ArtifactStore(dest / "models"),
                onnx,
                calibration,
                onboarding.SrsChoice(dev=True),
                zk.CircuitParams(),
                lambda _: None,
            )
    return dest / "models"


def seed_from(models: Path, dest: Path) -> None:
    """Copy a built store's circuits and SRS files into a test's own artifact store."""
    for sub in ("zk", "srs"):
        if (models / sub).is_dir():
            shutil.copytree(models / sub, dest / sub, dirs_exist_ok=True)


def seed_store(zk_store: dict[str, Any], dest: Path) -> None:
    """Copy the session's built circuits into a test's own artifact store."""
    for sub in ("zk", "srs"):
        shutil.copytree(zk_store["root"] / sub, dest / sub, dirs_exist_ok=True)


def load_script(path: Path, name: str) -> ModuleType:
    """A training script (``models/*/train.py``) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def card_sha256(card: Path, file_name: str) -> str:
    """The SHA-256 a model card names for ``file_name`` (``0x`` + 64 hex digits after the
    name, or in the table row naming the file)."""
    import re

    text = card.read_text()
    at = text.index(file_name)
    found = re.search(r"0x([0-9a-f]{64})", text[at:])
    assert found is not None, f"{card} names no SHA-256 after {file_name}"
    return found.group(1)


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def onnx_rows(path: Path, x: Any) -> Any:
    """The model at ``path`` on each row of ``x`` (the shipped graphs take one row a run),
    through onnxruntime's CPU provider: shape (rows, outputs), float64."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = [session.run(None, {name: r.astype(np.float32).reshape(1, -1)})[0] for r in x]
    return np.concatenate(rows).astype(np.float64)
