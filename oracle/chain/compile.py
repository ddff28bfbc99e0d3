"""Compile ``solidity/src`` with the pinned Solidity compiler from npm (solc-js).

No native compiler is downloaded: ``node node_modules/solc/solc.js --standard-json`` reads
a standard-JSON input in which this module has already placed every source, including
the OpenZeppelin files they import, so no import callback is needed. One artifact per
contract lands in ``solidity/out/<Name>.json``; a fingerprint of sources, compiler and
settings skips recompiling when nothing changed.

    python -m oracle.chain.compile [--force]
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import structlog

from oracle.errors import OracleError
from oracle.paths import ROOT

SRC = ROOT / "solidity" / "src"
OUT = ROOT / "solidity" / "out"
# The project's contracts go through the IR pipeline: the Coordinator with optimistic mode is
# about 26 KB with the legacy one, over the 24,576-byte limit, and 20 KB through IR.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}
# Generated EZKL verifiers are one large assembly block that the IR pipeline cannot fit in the
# stack ("too deep"): they keep the legacy pipeline.
STANDALONE_SETTINGS: dict[str, Any] = {k: v for k, v in SETTINGS.items() if k != "viaIR"}
# Generated EZKL verifiers shipped in the tree (the consumer kit's proof fixture): legacy too.
LEGACY_UNITS = ("src/mocks/fixtures/ExampleMlpVerifier.sol",)
_IMPORT = re.compile(r'^\s*import\s+(?:[^"\']*from\s+)?["\']([^"\']+)["\']', re.MULTILINE)


class CompileError(OracleError):
    """solc rejected the sources, or the compiler could not be run."""


def _solcjs(root: Path) -> Path:
    path = root / "node_modules" / "solc" / "solc.js"
    if not path.exists():
        raise CompileError("node_modules/solc is missing: run `make setup` (npm ci)")
    return path


def _compiler_version(root: Path) -> str:
    return str(json.loads((root / "node_modules" / "solc" / "package.json").read_text())["version"])


def _resolve(unit: str, importer: str, root: Path) -> tuple[str, Path]:
    """Map an import to (source unit name, file on disk)."""
    if unit.startswith("@"):
        return unit, root / "node_modules" / unit
    if unit.startswith("."):
        name = str(Path(importer).parent.joinpath(unit))
        parts: list[str] = []
        for part in name.split("/"):
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        name = "/".join(parts)
    else:
        name = unit
    if name.startswith("@"):
        return name, root / "node_modules" / name
    return name, root / "solidity" / name


def collect_sources(root: Path = ROOT) -> dict[str, str]:
    """Every source under solidity/src plus everything they import, keyed by unit name."""
    sources: dict[str, str] = {}
    todo = [
        (f"src/{p.relative_to(root / 'solidity' / 'src')}", p)
        for p in sorted((root / "solidity" / "src").rglob("*.sol"))
    ]
    while todo:
        name, path = todo.pop()
        if name in sources:
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise CompileError(f"cannot read {path} (imported as {name}): {exc.strerror}") from exc
        sources[name] = text
        for imported in _IMPORT.findall(text):
            todo.append(_resolve(imported, name, root))
    return sources


def _fingerprint(sources: dict[str, str], version: str) -> str:
    h = hashlib.sha256()
    h.update(version.encode())
    h.update(json.dumps([SETTINGS, STANDALONE_SETTINGS, LEGACY_UNITS], sort_keys=True).encode())
    for name in sorted(sources):
        h.update(name.encode())
        h.update(hashlib.sha256(sources[name].encode()).digest())
    return h.hexdigest()


def is_fresh(root: Path = ROOT) -> bool:
    info = root / "solidity" / "out" / ".build-info.json"
    if not info.exists():
        return False
    recorded = json.loads(info.read_text()).get("fingerprint")
    return bool(recorded == _fingerprint(collect_sources(root), _compiler_version(root)))


def compile_contracts(root: Path | None = None, force: bool = False) -> Path:
    """Compile if anything changed; return the artifacts directory."""
    root = root or ROOT
    out = root / "solidity" / "out"
    sources = collect_sources(root)
    version = _compiler_version(root)
    fingerprint = _fingerprint(sources, version)
    info = out / ".build-info.json"
    if (
        not force
        and info.exists()
        and json.loads(info.read_text()).get("fingerprint") == fingerprint
    ):
        return out
    # Two compiler runs: the IR pipeline for the project's contracts, the legacy one for the
    # generated verifiers (self-contained files, see LEGACY_UNITS).
    results: dict[str, Any] = {}
    legacy = {n: t for n, t in sources.items() if n in LEGACY_UNITS}
    for group, settings in (
        ({n: t for n, t in sources.items() if n not in legacy}, SETTINGS),
        (legacy, STANDALONE_SETTINGS),
    ):
        if not group:
            continue
        std_input = {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in group.items()},
            "settings": settings,
        }
        results.update(run_solc(std_input, root).get("contracts", {}))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for unit, contracts in results.items():
        if not unit.startswith("src/"):
            continue
        for name, data in contracts.items():
            artifact = {
                "contractName": name,
                "sourceName": unit,
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "compiler": f"solc-js {version}",
                "sourceHash": hashlib.sha256(sources[unit].encode()).hexdigest(),
            }
            (out / f"{name}.json").write_text(json.dumps(artifact, indent=1))
    info.write_text(json.dumps({"fingerprint": fingerprint, "compiler": version}))
    return out


def run_solc(std_input: dict[str, Any], root: Path = ROOT) -> dict[str, Any]:
    """Run solc-js on a standard-JSON input; return its output, raising on any error."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not installed: the Solidity compiler runs on Node.js")
    # Drive solc-js through its JS API and write the result to a file: its CLI can exit
    # before a large stdout pipe is drained, truncating the JSON.
    with tempfile.TemporaryDirectory(prefix="solc-") as tmp:
        in_path, out_path = Path(tmp) / "input.json", Path(tmp) / "output.json"
        in_path.write_text(json.dumps(std_input))
        script = (
            "const fs = require('fs'); const solc = require(process.argv[1]);"
            "fs.writeFileSync(process.argv[3],"
            " solc.compile(fs.readFileSync(process.argv[2], 'utf8')));"
        )
        proc = subprocess.run(
            [node, "-e", script, str(_solcjs(root).parent), str(in_path), str(out_path)],
            capture_output=True,
            text=True,
            cwd=root,
            check=False,
        )
        if proc.returncode != 0 or not out_path.exists():
            raise CompileError(f"solc-js exited {proc.returncode}: {proc.stderr.strip()[:2000]}")
        try:
            result: dict[str, Any] = json.loads(out_path.read_text())
        except ValueError as exc:
            raise CompileError(f"solc-js wrote invalid JSON: {exc}") from exc
    errors = [e for e in result.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError(
            "\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors)
        )
    return result


def compile_standalone(source: Path, contract: str, root: Path = ROOT) -> dict[str, Any]:
    """Compile one self-contained file (a generated verifier); return its artifact dict."""
    text = source.read_text()
    result = run_solc(
        {
            "language": "Solidity",
            "sources": {source.name: {"content": text}},
            "settings": STANDALONE_SETTINGS,
        },
        root,
    )
    try:
        data = result["contracts"][source.name][contract]
    except KeyError as exc:
        raise CompileError(f"{source} has no contract named {contract!r}") from exc
    return {
        "contractName": contract,
        "sourceName": source.name,
        "abi": data["abi"],
        "bytecode": "0x" + data["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
        "compiler": f"solc-js {_compiler_version(root)}",
        "sourceHash": hashlib.sha256(text.encode()).hexdigest(),
    }


def main() -> None:
    from oracle.log import configure_logging

    configure_logging()
    log = structlog.get_logger(__name__)
    try:
        path = compile_contracts(force="--force" in sys.argv[1:])
    except CompileError as exc:
        log.error("contracts.compile_failed", detail=str(exc))
        sys.exit(2)
    log.info("contracts.compiled", out=str(path))


if __name__ == "__main__":
    main()
