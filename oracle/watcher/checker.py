"""Re-running a request through the model's circuit: what a proof of its input would post.

Circuits are found in the artifact store by the ONNX hash the Coordinator records for the
model; a model whose circuit this host does not hold cannot be checked (and is not)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from oracle.chain.client import CoordinatorClient
from oracle.errors import ModelError
from oracle.models import zk
from oracle.models.circuits import check_circuit, srs_dir
from oracle.models.store import ArtifactStore

log = structlog.get_logger(__name__)


class NotHeldError(ModelError):
    """This host has no (usable) circuit for the model."""


class CircuitChecker:
    """One :class:`zk.Prover` per model id, built the first time the model is checked."""

    def __init__(self, client: CoordinatorClient, store: ArtifactStore, workdir: Path) -> None:
        self.client = client
        self.store = store
        self.workdir = workdir
        self._provers: dict[str, zk.Prover] = {}
        self._lock = threading.Lock()

    def prover(self, model_id: str) -> zk.Prover:
        """The prover of ``model_id``'s circuit, or :class:`NotHeldError` saying why not."""
        with self._lock:
            cached = self._provers.get(model_id)
            if cached is not None:
                return cached
            info = self.client.model(model_id)
            if not info["exists"]:
                raise NotHeldError(f"model {model_id} is not registered")
            try:
                files, manifest = check_circuit(self.store, str(info["onnx_hash"]))
            except ModelError as exc:
                raise NotHeldError(str(exc)) from exc
            scales = (manifest.input_scale, manifest.output_scale)
            if scales != (int(info["input_scale"]), int(info["output_scale"])):
                raise NotHeldError(
                    f"the circuit for {info['onnx_hash']} has scales {scales}, model {model_id} "
                    f"has {(info['input_scale'], info['output_scale'])}"
                )
            prover = zk.Prover(files, srs_dir(self.store) / manifest.srs, self.workdir)
            self._provers[model_id] = prover
            log.info("watcher.circuit_loaded", model_id=model_id, onnx_hash=info["onnx_hash"])
            return prover

    def output(self, model_id: str, inputs: Sequence[int], tag: str) -> list[int]:
        """The circuit's output for the request's exact on-chain input."""
        return self.prover(model_id).circuit_output(inputs, tag)
