"""Zk models on a test stack: onboard a session-built circuit (dev SRS) and declare it served."""

from __future__ import annotations

from eth_account import Account

from oracle.dev.keys import ANVIL_DEV_KEYS
from oracle.models import onboarding, zk
from oracle.models.store import ArtifactStore
from tests.support.models import EXAMPLE_CALIBRATION, ZkModel
from tests.support.stack import Stack

OWNER = Account.from_key(ANVIL_DEV_KEYS[0])


def onboard(stack: Stack, model: ZkModel) -> onboarding.Onboarded:
    """Register ``model`` with its verifier on the stack's Coordinator; the stack's node
    serves it (it was registered after the node started)."""
    done = onboarding.onboard(
        stack.db,
        ArtifactStore(stack.settings.store.path),
        stack.coordinator,
        OWNER,
        model.onnx,
        EXAMPLE_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(),
    )
    stack.local.serve(done.model_id)
    return done
