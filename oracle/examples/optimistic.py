"""`make demo-optimistic`: optimistic mode with a cheater in the room.

Two nodes serve the example model: the stack's honest node and a test-only cheating node
(:mod:`oracle.dev.cheater`) that answers every optimistic request assigned to it with a wrong
output and never proves. A watcher (``oracle watch``) re-runs every posted answer through the
model's circuit. Requests alternate between the two nodes. The story, read from the chain:

- the honest node's answers are posted, left unchallenged and finalised after the window;
- each wrong answer is challenged by the watcher, not proven, slashed after the proof
  window, and the request re-opens in Zk mode and is answered, with a proof, by the honest
  node;
- the consumer sees exactly one value per request, always the circuit's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from web3 import Web3

from oracle.chain.client import CoordinatorClient, connect
from oracle.chain.deploy import CoordinatorParams
from oracle.dev.requester import Requester
from oracle.dev.stack import LocalStack
from oracle.examples import onboard_with_dev_srs
from oracle.fixedpoint import from_fixed, to_fixed
from oracle.models import circuits, zk
from oracle.models.store import ArtifactStore
from oracle.paths import ROOT
from oracle.types import Mode

EXAMPLE_MODEL = ROOT / "models" / "example_mlp.onnx"
CALIBRATION = ROOT / "models" / "example_mlp.calibration.json"
CALLBACK_GAS = 300_000
# Short windows so the story fits in a minute on 0.5 s blocks (defaults: 10 and 20 blocks).
PARAMS = CoordinatorParams(challenge_window_blocks=8, proof_window_blocks=12)
BLOCK_TIME = 0.5


@dataclass
class Story:
    """What the chain says happened to one request."""

    request_id: int
    values: list[float]
    truth: list[int]
    requested_block: int
    assigned: str = ""
    posted_by: str = ""
    posted_output: list[int] = field(default_factory=list)
    posted_block: int | None = None
    challenged_block: int | None = None
    slashed_block: int | None = None
    slashed_wei: int = 0
    reopened: bool = False
    delivered: list[list[int]] = field(default_factory=list)
    delivered_block: int | None = None

    @property
    def wrong(self) -> bool:
        return bool(self.posted_output) and self.posted_output != self.truth


def run_optimistic_demo(n: int, workdir: Path | None, console: Console) -> bool:
    """Run the story; True when every wrong answer was slashed and every request reached its
    consumer exactly once with the circuit's output."""
    with tempfile.TemporaryDirectory(prefix="oracle-demo-optimistic-") as tmp:
        stack = LocalStack(
            workdir or Path(tmp),
            block_time=BLOCK_TIME,
            coordinator_params=PARAMS,
            start_watcher=True,
        )
        console.print(
            "[bold]starting local stack[/] (anvil, redis-server, contracts, worker, prover, "
            "node, watcher)"
        )
        with stack:
            return _drive(stack, n, console)


def _drive(stack: LocalStack, n: int, console: Console) -> bool:
    settings = stack.settings()
    w3 = connect(settings.chain.rpc_url)
    coordinator = CoordinatorClient(w3, settings.coordinator_address())
    console.print("onboarding the example model (EZKL circuit, keys, verifier)")
    onboarded = onboard_with_dev_srs(stack, coordinator, EXAMPLE_MODEL, CALIBRATION, console)
    model_id, scale = onboarded.model_id, onboarded.manifest.input_scale
    cheater = stack.start_cheater([model_id])
    names: dict[str, str] = {
        stack.node_account.address: "honest node",
        cheater.account.address: "[red]cheater[/]",
    }
    console.print(
        f"two nodes serve {model_id[:10]}…: the honest node and a test-only cheater that posts "
        "wrong outputs; the watcher re-runs every answer through the circuit"
    )
    truth = _circuit(stack, coordinator, model_id)
    requester = Requester.from_settings(settings)
    rng = np.random.default_rng(7)
    stories: dict[int, Story] = {}
    first_block = w3.eth.block_number
    for row in rng.uniform(-1, 1, size=(n, 4)).round(3):
        values = [to_fixed(float(v), scale) for v in row]
        request_id, block = requester.submit(model_id, values, int(Mode.OPTIMISTIC), CALLBACK_GAS)
        stories[request_id] = Story(request_id, [float(v) for v in row], truth(values), block)
    console.print(
        f"sent {n} optimistic requests; window {PARAMS.challenge_window_blocks} blocks, "
        f"proof window {PARAMS.proof_window_blocks} blocks ({BLOCK_TIME} s blocks)"
    )
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        _read_chain(coordinator, requester, stories, first_block)
        if all(s.delivered for s in stories.values()):
            break
        time.sleep(0.5)
    time.sleep(2 * BLOCK_TIME)  # one more look: a second delivery would show here
    _read_chain(coordinator, requester, stories, first_block)
    _print_table(stories, names, onboarded.manifest.output_scale, console)
    return _summary(stories, console)


def _circuit(stack: LocalStack, coordinator: CoordinatorClient, model_id: str) -> Any:
    store = ArtifactStore(stack.settings().store.path)
    files, manifest = circuits.check_circuit(store, coordinator.model(model_id)["onnx_hash"])
    prover = zk.Prover(files, circuits.srs_dir(store) / manifest.srs, stack.workdir / "truth")
    return lambda values: prover.circuit_output(values, "demo")


def _read_chain(
    coordinator: CoordinatorClient,
    requester: Requester,
    stories: dict[int, Story],
    from_block: int,
) -> None:
    events = coordinator.contract.events
    head = coordinator.w3.eth.block_number
    for ev in events.RequestAssigned().get_logs(from_block=from_block, to_block=head):
        story = stories.get(int(ev["args"]["requestId"]))
        if story is not None and not story.assigned:
            story.assigned = Web3.to_checksum_address(ev["args"]["node"])
    for posted in coordinator.posted_logs(from_block, head):
        story = stories.get(posted.request_id)
        if story is not None and story.posted_block is None:
            story.posted_by, story.posted_output = posted.node, list(posted.output)
            story.posted_block = posted.block_number
    for challenge in coordinator.challenge_logs(from_block, head):
        story = stories.get(challenge.request_id)
        if story is not None:
            story.challenged_block = challenge.block_number
    _read_outcomes(coordinator, requester, stories, from_block, head)


def _read_outcomes(
    coordinator: CoordinatorClient,
    requester: Requester,
    stories: dict[int, Story],
    from_block: int,
    head: int,
) -> None:
    events = coordinator.contract.events
    for ev in events.OptimisticAnswerSlashed().get_logs(from_block=from_block, to_block=head):
        story = stories.get(int(ev["args"]["requestId"]))
        if story is not None:
            story.slashed_block = int(ev["blockNumber"])
            story.slashed_wei = int(ev["args"]["slashed"])
    for ev in events.RequestReopened().get_logs(from_block=from_block, to_block=head):
        story = stories.get(int(ev["args"]["requestId"]))
        if story is not None:
            story.reopened = True
    received = requester.consumer.events.PredictionReceived()
    for story in stories.values():
        story.delivered = []
    for ev in received.get_logs(from_block=from_block, to_block=head):
        story = stories.get(int(ev["args"]["requestId"]))
        if story is not None:
            story.delivered.append([int(v) for v in ev["args"]["output"]])
            story.delivered_block = int(ev["blockNumber"])


def _print_table(
    stories: dict[int, Story], names: dict[str, str], scale: int, console: Console
) -> None:
    table = Table(title="optimistic requests, as the chain tells them")
    for col in ("request", "assigned", "posted", "challenged", "resolution", "consumer got", "ok"):
        table.add_column(col)

    def show(values: list[int]) -> str:
        return ", ".join(f"{v} ({from_fixed(v, scale):+.4f})" for v in values)

    for s in stories.values():
        posted = show(s.posted_output) if s.posted_output else "-"
        if s.wrong:
            posted = f"[red]{posted}[/]"
        challenged = (
            f"block +{s.challenged_block - s.posted_block}"
            if (s.challenged_block and s.posted_block)
            else "-"
        )
        if s.slashed_block is not None and s.posted_block is not None:
            resolution = (
                f"slashed {s.slashed_wei / 10**18:.2f} ETH at +{s.slashed_block - s.posted_block}"
                " blocks; re-opened in Zk"
            )
        elif s.delivered and not s.reopened:
            resolution = "finalised after the window"
        else:
            resolution = "[yellow]pending[/]"
        got = " | ".join(show(d) for d in s.delivered) or "[red]nothing[/]"
        ok = len(s.delivered) == 1 and s.delivered[0] == s.truth
        table.add_row(
            str(s.request_id),
            names.get(s.assigned, s.assigned[:10]),
            posted,
            challenged,
            resolution,
            got,
            "[green]yes[/]" if ok else "[red]NO[/]",
        )
    console.print(table)


def _summary(stories: dict[int, Story], console: Console) -> bool:
    wrong = [s for s in stories.values() if s.wrong]
    caught = [s for s in wrong if s.slashed_block is not None]
    honest = [s for s in stories.values() if s.posted_output and not s.wrong]
    exact = [s for s in stories.values() if len(s.delivered) == 1 and s.delivered[0] == s.truth]
    lags = [s.slashed_block - s.posted_block for s in caught if s.posted_block is not None]  # type: ignore[operator]
    bound = PARAMS.challenge_window_blocks + PARAMS.proof_window_blocks
    console.print(
        f"honest answers finalised: {sum(1 for s in honest if s.delivered)}/{len(honest)}; "
        f"wrong answers slashed: {len(caught)}/{len(wrong)}"
        + (f" (posted to slashed: {min(lags)}-{max(lags)} blocks; windows {bound})" if lags else "")
    )
    if caught:
        cost = caught[0].slashed_wei / 10**18
        console.print(
            f"each wrong answer cost the cheater {cost:.2f} ETH (bond + stake); it saved "
            "nothing it could keep: it was paid no fee, and the consumer got the right value"
        )
    console.print(
        f"consumer saw exactly one value per request, the circuit's: {len(exact)}/{len(stories)}"
    )
    return bool(wrong) and len(caught) == len(wrong) and len(exact) == len(stories)
