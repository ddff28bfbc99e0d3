"""The on-chain model registry, mirrored into the ``models`` table.

The chain is the truth: a record is copied the first time a request names its model, and
never edited afterwards (on-chain records are immutable). The artifact itself is fetched
from the store by the record's ONNX hash (not the model id) by the worker that needs it.
"""

from __future__ import annotations

from collections.abc import Iterable

from oracle.chain.client import CoordinatorClient
from oracle.db import Database, ModelRecord
from oracle.models.store import ArtifactStore


class ModelMirror:
    def __init__(self, db: Database, coordinator: CoordinatorClient, store: ArtifactStore) -> None:
        self.db = db
        self.coordinator = coordinator
        self.store = store

    def __call__(self, model_ids: Iterable[str]) -> None:
        self.sync(model_ids)

    def sync(self, model_ids: Iterable[str]) -> None:
        """Copy the records of ``model_ids`` the node has not seen yet (one transaction)."""
        with self.db.session() as s:
            for model_id in model_ids:
                if s.get(ModelRecord, model_id) is not None:
                    continue
                info = self.coordinator.model(model_id)
                if not info["exists"]:
                    continue
                onnx_hash = str(info["onnx_hash"])
                s.add(
                    ModelRecord(
                        model_id=model_id,
                        onnx_hash=onnx_hash,
                        artifact_path=str(self.store.path_for(onnx_hash)),
                        input_length=int(info["input_length"]),
                        output_length=int(info["output_length"]),
                        input_scale=int(info["input_scale"]),
                        output_scale=int(info["output_scale"]),
                        verifier=None if int(info["verifier"], 16) == 0 else info["verifier"],
                        owner=info["owner"],
                    )
                )
                s.flush()
