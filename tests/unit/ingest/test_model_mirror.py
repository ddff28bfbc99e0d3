"""The model mirror copies a registry record with its ONNX hash, and points the artifact
at the store's file for that hash (never at one named by the model id)."""

from __future__ import annotations

from pathlib import Path

from oracle.db import Database, ModelRecord
from oracle.ingest.mirror import ModelMirror
from oracle.models.store import ArtifactStore
from tests.support.contract import MODEL, MODEL_ONNX, ZK_MODEL, ZK_MODEL_ONNX, Chain


def test_the_mirror_keys_the_file_by_its_onnx_hash(chain: Chain, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'oracle.db'}")
    try:
        db.upgrade()
        store = ArtifactStore(tmp_path / "models")
        ModelMirror(db, chain.coord, store).sync([MODEL, ZK_MODEL, "0x" + "99" * 32])
        with db.session() as s:
            rows = {r.model_id: r for r in s.query(ModelRecord)}
        assert set(rows) == {MODEL, ZK_MODEL}  # the unknown id is not copied
        for model_id, onnx_hash in ((MODEL, MODEL_ONNX), (ZK_MODEL, ZK_MODEL_ONNX)):
            assert model_id != onnx_hash
            assert rows[model_id].onnx_hash == onnx_hash
            assert rows[model_id].artifact_path == str(store.path_for(onnx_hash))
        assert rows[MODEL].verifier is None
        assert rows[ZK_MODEL].verifier == chain.verifier.address
    finally:
        db.dispose()
