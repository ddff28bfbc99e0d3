"""The EZKL adapter: the only module that imports ``ezkl``.

Onboarding (settings, calibration, budget check, compile, SRS, keys, Solidity verifier)
and proving (witness from the on-chain input, prove, local verify) go through here, so an
EZKL upgrade touches one file. EZKL's Python API works on file paths; this module keeps
those paths in one :class:`CircuitFiles` layout per model.

Fixed-point convention, shared with the Coordinator: an on-chain integer ``q`` at scale
``s`` is the value ``q / 2**s``; EZKL quantises a float ``x`` to ``round(x * 2**s)`` and
maps negatives to ``r - |q|`` in the BN254 scalar field, which is exactly the Coordinator's
instance mapping. The witness is checked to hold the request's integers bit for bit.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ezkl

from oracle.errors import ProofError
from oracle.fixedpoint import BN254_R

FIELD_MODULUS = BN254_R
_HALF_FIELD = FIELD_MODULUS // 2
# Peak prover memory per circuit row and column, fitted on this project's models (ezkl 23,
# 2-core x86): k=15 with 1 inner column measured 234 MB, with 2 columns 335 MB.
_BYTES_PER_ROW_PER_COL = 4096
VERIFIER_CONTRACT = "Halo2Verifier"
DEV_SRS_WARNING = (
    "INSECURE development SRS (made locally with ezkl.gen_srs): whoever made it can forge "
    "proofs. Use --srs with the public KZG parameters for anything real."
)

Progress = Callable[[str], None]


class CircuitTooLargeError(ProofError):
    """The calibrated circuit needs more rows or memory than the configured budget."""


@dataclass(frozen=True)
class CircuitParams:
    """How onboarding builds a circuit (see ``ZkSettings``)."""

    target: Literal["resources", "accuracy"] = "resources"
    scales: tuple[int, ...] | None = None
    num_inner_cols: int = 1
    decomp_base: int = 128
    decomp_legs: int = 4
    max_logrows: int = 20
    max_prover_memory_mb: int = 8192


@dataclass(frozen=True)
class CircuitInfo:
    """What the calibrated settings say about a circuit."""

    logrows: int
    input_scale: int
    output_scale: int
    num_rows: int
    num_inner_cols: int

    @property
    def est_prover_memory_mb(self) -> int:
        return ((1 << self.logrows) * _BYTES_PER_ROW_PER_COL * (self.num_inner_cols + 1)) >> 20

    @classmethod
    def read(cls, settings_path: Path) -> CircuitInfo:
        data = json.loads(settings_path.read_text())
        run_args = data["run_args"]
        in_scales, out_scales = data["model_input_scales"], data["model_output_scales"]
        if len(in_scales) != 1 or len(out_scales) != 1:
            raise ProofError(
                f"expected one input and one output tensor, circuit has "
                f"{len(in_scales)} and {len(out_scales)}"
            )
        return cls(
            logrows=int(run_args["logrows"]),
            input_scale=int(in_scales[0]),
            output_scale=int(out_scales[0]),
            num_rows=int(data["num_rows"]),
            num_inner_cols=int(run_args["num_inner_cols"]),
        )


@dataclass(frozen=True)
class CircuitFiles:
    """One model's EZKL artifacts, all in one directory."""

    root: Path

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.root / "model.compiled"

    @property
    def vk(self) -> Path:
        return self.root / "vk.key"

    @property
    def pk(self) -> Path:
        return self.root / "pk.key"

    @property
    def verifier_sol(self) -> Path:
        return self.root / "Verifier.sol"

    def hashed(self) -> tuple[Path, ...]:
        """Files whose hashes the manifest records."""
        return (self.settings, self.compiled, self.vk, self.pk, self.verifier_sol)


# -- onboarding ------------------------------------------------------------------------
def build_circuit(
    onnx_path: Path,
    calibration: Path,
    files: CircuitFiles,
    params: CircuitParams,
    progress: Progress = lambda _: None,
) -> CircuitInfo:
    """Settings with public input/output and fixed parameters, calibrated and compiled.

    Raises :class:`CircuitTooLargeError` before any slow step when the circuit is over budget.
    """
    run_args: Any = ezkl.PyRunArgs()  # its type stub lacks the attributes
    run_args.input_visibility = "public"
    run_args.output_visibility = "public"
    run_args.param_visibility = "fixed"
    run_args.num_inner_cols = params.num_inner_cols
    run_args.decomp_base = params.decomp_base
    run_args.decomp_legs = params.decomp_legs
    if params.scales:
        run_args.input_scale = params.scales[0]
        run_args.param_scale = params.scales[0]
    files.root.mkdir(parents=True, exist_ok=True)
    progress("generating circuit settings")
    _call("gen_settings", str(onnx_path), str(files.settings), py_run_args=run_args)
    progress(f"calibrating on {calibration.name} (target: {params.target})")
    # Calibrate without a logrows cap so an oversized model is measured, then refused with
    # a figure instead of a bare failure.
    _call(
        "calibrate_settings",
        str(calibration),
        str(onnx_path),
        str(files.settings),
        params.target,
        scales=list(params.scales) if params.scales else None,
    )
    info = CircuitInfo.read(files.settings)
    check_budget(info, params)
    scales = f"{info.input_scale}/{info.output_scale}"
    progress(f"compiling circuit: 2^{info.logrows} rows, scales {scales}")
    _call("compile_circuit", str(onnx_path), str(files.compiled), str(files.settings))
    return info


def check_budget(info: CircuitInfo, params: CircuitParams) -> None:
    if info.logrows > params.max_logrows:
        raise CircuitTooLargeError(
            f"circuit needs 2^{info.logrows} rows, over the budget of 2^{params.max_logrows} "
            f"by {1 << (info.logrows - params.max_logrows)}x (zk.max_logrows); "
            "try calibration target 'resources', a smaller input scale, or a smaller model"
        )
    need = info.est_prover_memory_mb
    if need > params.max_prover_memory_mb:
        raise CircuitTooLargeError(
            f"proving would need about {need} MB, over the budget of "
            f"{params.max_prover_memory_mb} MB by {need - params.max_prover_memory_mb} MB "
            "(zk.max_prover_memory_mb)"
        )


def srs_logrows(path: Path) -> int:
    """The k of a KZG parameter file (its first 4 bytes, little-endian)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ProofError(f"cannot read SRS file {path}: {exc.strerror}") from exc
    if len(head) != 4:
        raise ProofError(f"{path} is not a KZG parameter file (too short)")
    k = int(struct.unpack("<I", head)[0])
    if not 1 <= k <= 28:
        raise ProofError(f"{path} is not a KZG parameter file (k = {k})")
    return k


def generate_dev_srs(path: Path, logrows: int) -> None:
    """A local, insecure SRS for development and tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    _call("gen_srs", str(tmp), logrows)
    os.replace(tmp, path)


def setup_keys(files: CircuitFiles, srs: Path) -> None:
    _call("setup", str(files.compiled), str(files.vk), str(files.pk), str(srs))


def write_verifier(files: CircuitFiles, srs: Path) -> Path:
    """Render the Solidity verifier. EZKL then tries to download solc, which fails offline;
    the .sol is already written by then, so only a missing file is an error."""
    files.verifier_sol.unlink(missing_ok=True)
    abi = files.root / "Verifier.abi"

    async def render() -> None:
        await ezkl.create_evm_verifier(
            str(files.vk),
            str(files.settings),
            str(files.verifier_sol),
            str(abi),
            str(srs),
            reusable=False,
        )

    try:
        asyncio.run(render())
    except Exception as exc:  # ezkl raises plain RuntimeError
        if not files.verifier_sol.exists() or files.verifier_sol.stat().st_size == 0:
            raise ProofError(f"EZKL could not write the verifier: {exc}") from exc
    abi.unlink(missing_ok=True)
    return files.verifier_sol


# -- proving ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Proof:
    output: list[int]  # the circuit's output, fixed point at the model's output scale
    proof: bytes  # what the on-chain verifier takes
    instances: list[int]  # field elements: input then output
    witness_s: float
    prove_s: float
    verify_s: float


def to_field(x: int) -> int:
    return x % FIELD_MODULUS


def from_field(v: int) -> int:
    return v - FIELD_MODULUS if v > _HALF_FIELD else v


def _felt(hex_le: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_le), "little")


class Prover:
    """Proves one model. Keys and SRS are files EZKL reads per call; the paths are checked
    once, when the worker process first loads the model."""

    def __init__(self, files: CircuitFiles, srs: Path, workdir: Path) -> None:
        for path in (files.settings, files.compiled, files.pk, files.vk, srs):
            if not path.exists():
                raise ProofError(f"zk artifact missing: {path}")
        self.files = files
        self.srs = srs
        self.info = CircuitInfo.read(files.settings)
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def circuit_output(self, inputs: Sequence[int], tag: str) -> list[int]:
        """The circuit's output for these integers (a witness, no proof): what a proof of
        this input would post."""
        data = self.workdir / f"{tag}.input.json"
        witness = self.workdir / f"{tag}.witness.json"
        scale = float(1 << self.info.input_scale)
        data.write_text(json.dumps({"input_data": [[q / scale for q in inputs]]}))
        try:
            w = _call("gen_witness", str(data), str(self.files.compiled), str(witness))
            if [_felt(h) for h in w["inputs"][0]] != [to_field(q) for q in inputs]:
                raise ProofError("input is not exactly representable in the circuit")
            return [from_field(_felt(h)) for h in w["outputs"][0]]
        finally:
            for path in (data, witness):
                path.unlink(missing_ok=True)

    def prove(self, inputs: Sequence[int], tag: str) -> Proof:
        """Witness from the exact on-chain integers, prove, and verify locally."""
        data = self.workdir / f"{tag}.input.json"
        witness = self.workdir / f"{tag}.witness.json"
        proof_path = self.workdir / f"{tag}.proof.json"
        scale = float(1 << self.info.input_scale)
        data.write_text(json.dumps({"input_data": [[q / scale for q in inputs]]}))
        try:
            started = time.perf_counter()
            w = _call("gen_witness", str(data), str(self.files.compiled), str(witness))
            witness_s = time.perf_counter() - started
            wanted = [to_field(q) for q in inputs]
            got = [_felt(h) for h in w["inputs"][0]]
            if got != wanted:
                raise ProofError("input is not exactly representable in the circuit")
            output = [from_field(_felt(h)) for h in w["outputs"][0]]
            started = time.perf_counter()
            _call(
                "prove",
                str(witness),
                str(self.files.compiled),
                str(self.files.pk),
                str(proof_path),
                str(self.srs),
            )
            prove_s = time.perf_counter() - started
            started = time.perf_counter()
            if not _call(
                "verify",
                str(proof_path),
                str(self.files.settings),
                str(self.files.vk),
                str(self.srs),
            ):
                raise ProofError("the proof does not verify locally")
            verify_s = time.perf_counter() - started
            body = json.loads(proof_path.read_text())
            instances = [_felt(h) for h in body["instances"][0]]
            if instances != wanted + [to_field(q) for q in output]:
                raise ProofError("proof instances are not the request's input and output")
            return Proof(
                output=output,
                proof=bytes.fromhex(str(body["hex_proof"]).removeprefix("0x")),
                instances=instances,
                witness_s=witness_s,
                prove_s=prove_s,
                verify_s=verify_s,
            )
        finally:
            for path in (data, witness, proof_path):
                path.unlink(missing_ok=True)


def bare_prove(witness: Path, files: CircuitFiles, srs: Path, proof_path: Path) -> float:
    """``ezkl.prove`` alone, timed: the reference the benchmark divides by."""
    started = time.perf_counter()
    _call("prove", str(witness), str(files.compiled), str(files.pk), str(proof_path), str(srs))
    return time.perf_counter() - started


def gen_witness(data: Path, files: CircuitFiles, out: Path) -> dict[str, Any]:
    result: dict[str, Any] = _call("gen_witness", str(data), str(files.compiled), str(out))
    return result


def _call(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``ezkl.<name>``, turning its untyped RuntimeErrors into :class:`ProofError`."""
    try:
        return getattr(ezkl, name)(*args, **kwargs)
    except Exception as exc:
        raise ProofError(f"ezkl.{name} failed: {exc}") from exc
