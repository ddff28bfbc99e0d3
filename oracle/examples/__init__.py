"""Scenario demos: contracts that act on proved model outputs (see each module)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from oracle.chain.client import CoordinatorClient
from oracle.db import Database
from oracle.dev.stack import LocalStack
from oracle.models.onboarding import Onboarded, SrsChoice, onboard
from oracle.models.store import ArtifactStore
from oracle.models.zk import DEV_SRS_WARNING, CircuitParams


def onboard_with_dev_srs(
    stack: LocalStack,
    coordinator: CoordinatorClient,
    onnx: Path,
    calibration: Path,
    console: Console,
) -> Onboarded:
    """Onboard a model for Zk mode on the local stack with an insecure development SRS,
    showing each step, then the warning that such proofs prove nothing."""
    settings = stack.settings()
    done = onboard(
        Database(settings.db.url),
        ArtifactStore(settings.store.path),
        coordinator,
        stack.owner,
        onnx,
        calibration,
        SrsChoice(dev=True),
        CircuitParams(),
        lambda step: console.print(f"  [dim]- {step}[/]", highlight=False),
    )
    console.print(f"[bold yellow]warning:[/] {DEV_SRS_WARNING}", highlight=False)
    stack.serve(done.model_id)
    return done
