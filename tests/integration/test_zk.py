"""Zk mode end to end: EZKL circuits, a prover worker process, the verifier on anvil."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from eth_account import Account

from oracle.chain.client import RequestStruct
from oracle.chain.deploy import send
from oracle.dev.keys import ANVIL_DEV_KEYS, NODE_KEY
from oracle.errors import TransactionError
from oracle.models import circuits, onboarding, zk
from oracle.models.store import ArtifactStore
from oracle.types import RequestStatus
from tests.support import db
from tests.support.checks import answered_exactly_once
from tests.support.models import EXAMPLE_CALIBRATION, ZkModel, onnx_variant, seed_store
from tests.support.stack import Stack
from tests.support.wait import wait_for
from tests.support.zk import onboard

pytestmark = pytest.mark.integration

OWNER = Account.from_key(ANVIL_DEV_KEYS[0])
NODE = Account.from_key(NODE_KEY)
SCALE = 13  # what calibration picks for the example model (asserted below)
TOLERANCE = 0.01  # |circuit - onnxruntime| in model units, for inputs in [-1, 1]


@dataclass
class ZkSetup:
    a: onboarding.Onboarded
    b: onboarding.Onboarded
    onnx_a: Path
    store: ArtifactStore


@pytest.fixture
def zk_setup(stack: Stack, zk_store: dict[str, Any]) -> ZkSetup:
    seed_store(zk_store, Path(stack.settings.store.path))
    a, b = onboard(stack, zk_store["a"]), onboard(stack, zk_store["b"])
    assert (a.manifest.input_scale, a.manifest.output_scale) == (SCALE, SCALE)
    return ZkSetup(a, b, zk_store["a"].onnx, ArtifactStore(stack.settings.store.path))


def fixed(values: list[float]) -> list[int]:
    return [round(v * (1 << SCALE)) for v in values]


def onnx_float(path: Path, values: list[int]) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (np.array(values, dtype=np.float64) / (1 << SCALE)).astype(np.float32).reshape(1, -1)
    return float(session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)[0])


def request_struct(stack: Stack, request_id: int) -> RequestStruct:
    events = stack.coordinator.contract.events.InferenceRequested().get_logs(
        from_block=0, argument_filters={"requestId": request_id}
    )
    a = events[0]["args"]
    return RequestStruct(
        request_id,
        "0x" + bytes(a["modelId"]).hex(),
        a["consumer"],
        int(a["mode"]),
        int(a["callbackGasLimit"]),
        int(events[0]["blockNumber"]),
        int(a["fee"]),
        tuple(int(v) for v in a["input"]),
    )


def fulfil(stack: Stack, req: RequestStruct, output: list[int], proof: bytes) -> Any:
    return send(
        stack.w3,
        NODE,
        stack.coordinator.contract.functions.fulfill(req.as_tuple(), output, b"", proof),
    )


def rejected(
    stack: Stack, req: RequestStruct, output: list[int], proof: bytes, error: str = "InvalidProof"
) -> None:
    with pytest.raises(TransactionError) as info:
        fulfil(stack, req, output, proof)
    assert f"{error}(" in str(info.value), str(info.value)
    assert stack.coordinator.commitment(req.request_id) != b"\0" * 32  # still open


def test_zk_request_is_proved_verified_and_delivered(
    stack: Stack, zk_setup: ZkSetup, prover: Any, running_node: Any
) -> None:
    values = fixed([0.5, -0.25, 0.75, -1.0])
    request_id = stack.request(values, mode=1, model_id=zk_setup.a.model_id)
    _, output, err = stack.wait_result(request_id, timeout=90)
    assert err == b""
    expected = onnx_float(zk_setup.onnx_a, values)
    assert abs(output[0] / (1 << SCALE) - expected) < TOLERANCE
    row = db.row(stack, request_id)
    assert row is not None
    assert row.proof and len(row.proof) > 1000
    assert [int(v) for v in row.output or []] == output  # the circuit's output was posted
    assert row.circuit_deviation is not None and row.circuit_deviation < TOLERANCE
    assert row.reference_output is not None
    assert abs(row.reference_output[0] - expected) < 1e-6
    wait_for(lambda: stack.row_status(request_id) == RequestStatus.CONFIRMED.value, 30, "confirm")
    # The fulfilment went through the model's verifier: a plain-mode answer would not.
    assert stack.coordinator.model(zk_setup.a.model_id)["verifier"] == zk_setup.a.verifier
    # The prover ran below the node and the inference workers (zk.prover_nice, default 10).
    assert prover.proc is not None
    assert (
        os.getpriority(os.PRIO_PROCESS, prover.proc.pid) - os.getpriority(os.PRIO_PROCESS, 0)
        == stack.settings.zk.prover_nice
    )


@pytest.mark.faults
@pytest.mark.no_worker
def test_chain_rejects_forged_zk_answers(stack: Stack, zk_setup: ZkSetup, tmp_path: Path) -> None:
    files_a, man_a = circuits.check_circuit(zk_setup.store, zk_setup.a.manifest.onnx_hash)
    files_b, man_b = circuits.check_circuit(zk_setup.store, zk_setup.b.manifest.onnx_hash)
    srs = circuits.srs_dir(zk_setup.store)
    prover_a = zk.Prover(files_a, srs / man_a.srs, tmp_path / "pa")
    prover_b = zk.Prover(files_b, srs / man_b.srs, tmp_path / "pb")
    x1, x2 = fixed([0.1, 0.2, -0.3, 0.4]), fixed([-0.9, 0.8, 0.0, 0.3])
    req1 = request_struct(stack, stack.request(x1, mode=1, model_id=zk_setup.a.model_id))
    req2 = request_struct(stack, stack.request(x2, mode=1, model_id=zk_setup.a.model_id))
    p1, p2, pb = prover_a.prove(x1, "1"), prover_a.prove(x2, "2"), prover_b.prove(x1, "b")
    assert p1.output != p2.output and p1.output != pb.output

    rejected(stack, req1, [p1.output[0] + 1], p1.proof)  # tampered output
    forged = bytearray(p1.proof)
    forged[100] ^= 0x01
    rejected(stack, req1, p1.output, bytes(forged))  # tampered proof
    rejected(stack, req1, p2.output, p2.proof)  # proof made for another request's input
    rejected(stack, req1, pb.output, pb.proof)  # proof from another model's circuit
    rejected(stack, req1, [], b"", "OutputLengthMismatch")  # no output, no proof

    receipt = fulfil(stack, req1, p1.output, p1.proof)
    assert receipt["status"] == 1
    assert stack.requester.result(req1.request_id) == (True, p1.output, b"")
    assert fulfil(stack, req2, p2.output, p2.proof)["status"] == 1  # p2 was valid, for req2
    # Model B's verifier accepts B's proof of x1 but was never asked: A's verifier is bound.
    verifier_b = stack.w3.eth.contract(
        address=zk_setup.b.verifier,
        abi=[
            {
                "type": "function",
                "name": "verifyProof",
                "stateMutability": "nonpayable",
                "inputs": [
                    {"name": "proof", "type": "bytes"},
                    {"name": "instances", "type": "uint256[]"},
                ],
                "outputs": [{"name": "", "type": "bool"}],
            }
        ],
    )
    assert verifier_b.functions.verifyProof(pb.proof, pb.instances).call() is True


@pytest.mark.no_worker
def test_zk_on_a_model_without_verifier_is_refused_at_request_time(
    stack: Stack, zk_setup: ZkSetup
) -> None:
    with pytest.raises(TransactionError) as info:
        stack.request(fixed([0.1, 0.1, 0.1, 0.1]), mode=1)  # the plain example model
    assert "ModelNotVerifiable(" in str(info.value)


@pytest.mark.no_worker
def test_onboarding_again_changes_nothing(stack: Stack, zk_setup: ZkSetup) -> None:
    before = {p: p.stat().st_mtime_ns for p in zk_setup.a.circuit_dir.iterdir()}
    again = onboard(stack, ZkModel(zk_setup.onnx_a, zk_setup.a.manifest.onnx_hash))
    assert (again.model_id, again.verifier, again.newly_registered) == (
        zk_setup.a.model_id,
        zk_setup.a.verifier,
        False,
    )
    assert {p: p.stat().st_mtime_ns for p in zk_setup.a.circuit_dir.iterdir()} == before


def test_zk_bad_input_gets_an_error_answer_and_a_refund(
    stack: Stack, zk_setup: ZkSetup, prover: Any, running_node: Any
) -> None:
    # A wrong input length never becomes a request: the Coordinator refuses it.
    with pytest.raises(TransactionError, match="InputLengthMismatch"):
        stack.request([1, 2, 3], mode=1, model_id=zk_setup.a.model_id)
    request_id = stack.request([2**100, 0, 0, 0], mode=1, model_id=zk_setup.a.model_id)
    _, output, err = stack.wait_result(request_id, timeout=60)
    assert output == [] and err.startswith(b"value out of range")
    refunded = stack.coordinator.contract.events.FeeRefunded().get_logs(
        from_block=0, argument_filters={"requestId": request_id}
    )
    assert len(refunded) == 1


def _pool_children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def slow_model(stack: Stack, zk_setup: ZkSetup, tmp_path: Path) -> onboarding.Onboarded:
    """A circuit big enough (2^14 rows) that a proof takes long enough to be killed in,
    registered and declared served before the node starts (a declaration sent with the node's
    key while its relayer runs would take a nonce the relayer counted on)."""
    slow = onnx_variant(tmp_path / "slow.onnx", "slow")
    done = onboarding.onboard(
        stack.db,
        zk_setup.store,
        stack.coordinator,
        OWNER,
        slow,
        EXAMPLE_CALIBRATION,
        onboarding.SrsChoice(dev=True),
        zk.CircuitParams(decomp_base=1 << 13, decomp_legs=2),
    )
    assert done.manifest.logrows >= 14
    stack.local.serve(done.model_id)
    return done


# a 2^14-row proof killed and redone (~17 s per database): `make faults` only
@pytest.mark.slow_fault
@pytest.mark.faults
def test_prover_killed_mid_proof_is_redone_and_delivered_once(
    stack: Stack, slow_model: onboarding.Onboarded, running_node: Any
) -> None:
    done = slow_model
    prover = stack.start_prover()
    try:
        values = fixed([0.3, 0.3, -0.3, 0.3])
        request_id = stack.request(values, mode=1, model_id=done.model_id)

        def claimed() -> bool:
            row = db.row(stack, request_id)
            return (
                row is not None
                and row.status == RequestStatus.PROVING.value
                and row.proof_attempts == 1
            )

        wait_for(claimed, 60, "the prover to claim the job")
        assert prover.proc is not None
        children = _pool_children(prover.proc.pid)
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
        _, output, err = stack.wait_result(request_id, timeout=120)
        assert err == b"" and output
        answered_exactly_once(stack, [request_id], timeout=60)
        proved = db.row(stack, request_id)
        assert proved is not None and proved.proof_attempts >= 2
    finally:
        prover.stop()


@pytest.mark.no_worker
def test_cli_onboarding_registers_a_verifiable_model_once(stack: Stack, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from oracle.paths import ROOT

    onnx = onnx_variant(tmp_path / "cli.onnx", "cli")
    argv = [
        sys.executable,
        "-m",
        "oracle.cli",
        "model",
        "register",
        str(onnx),
        "--zk",
        "--calibration",
        str(EXAMPLE_CALIBRATION),
        "--dev-srs",
        "--json",
    ]
    env = {**os.environ, **stack.worker_env}
    first = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout)
    assert result["newly_registered"] is True and result["dev_srs"] is True
    assert "INSECURE development SRS" in first.stderr  # said on every use
    onchain = stack.coordinator.model(result["model_id"])
    assert onchain["verifier"] == result["verifier"]
    assert (onchain["input_scale"], onchain["output_scale"]) == (
        result["input_scale"],
        result["output_scale"],
    )
    second = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )
    assert second.returncode == 0, second.stderr[-2000:]
    again = json.loads(second.stdout)
    assert again == {**result, "newly_registered": False}
