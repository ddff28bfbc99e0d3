"""Declaring on chain which models this node serves.

The Coordinator assigns a request only to an active node that declared it serves the
request's model (``serveModel``). At start, before the relayer sends anything, the node
declares every model it holds: a row in its ``models`` table whose ONNX file is in its
artifact store. A model registered while the node runs is served from the next start, or
at once with ``oracle model serve MODEL_ID``.

What this guarantees: after :func:`declare_held_models` returns, the Coordinator lists this
node for every model it holds (if the node is active). What it leaves to others: a model
whose file goes missing later is left ``unserved`` by the workers, never answered with an
error; ``oracle model serve --stop`` takes it off the list.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from oracle.chain.client import CoordinatorClient
from oracle.db import Database, ModelRecord
from oracle.models.store import ArtifactStore

log = structlog.get_logger(__name__)


def held_models(db: Database, store: ArtifactStore) -> list[str]:
    """Models in the ``models`` table whose file this node has."""
    with db.session() as s:
        records = list(s.scalars(select(ModelRecord)))
    return [
        r.model_id
        for r in records
        if Path(r.artifact_path).is_file() or store.path_for(r.onnx_hash).is_file()
    ]


def declare_served(
    coordinator: CoordinatorClient, account: LocalAccount, model_ids: list[str]
) -> list[str]:
    """``serveModel`` for each of ``model_ids`` not served by ``account`` yet (and known
    on chain). Returns the models newly declared; nothing when the node is not active."""
    from oracle.chain.deploy import send

    fns = coordinator.contract.functions
    if not fns.isActiveNode(account.address).call():
        log.warning("serving.node_inactive", node=account.address, models=len(model_ids))
        return []
    declared: list[str] = []
    for model_id in model_ids:
        raw = bytes.fromhex(model_id.removeprefix("0x"))
        if fns.isServingModel(raw, account.address).call():
            continue
        if not coordinator.model(model_id)["exists"]:
            log.warning("serving.unknown_model", model_id=model_id)
            continue
        send(coordinator.w3, account, fns.serveModel(raw))
        declared.append(model_id)
        log.info("serving.declared", model_id=model_id, node=account.address)
    return declared


def declare_held_models(
    db: Database, store: ArtifactStore, coordinator: CoordinatorClient, account: LocalAccount
) -> list[str]:
    """Declare every model this node holds; returns those newly declared."""
    return declare_served(coordinator, account, held_models(db, store))
