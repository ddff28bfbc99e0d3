"""Compiled contract artifacts: ABIs and bytecode for the Python side, and error decoding."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_typing import HexStr
from web3 import Web3

from oracle.chain.compile import OUT, compile_contracts, is_fresh
from oracle.errors import ChainError


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: HexStr
    deployed_bytecode: HexStr


@lru_cache(maxsize=64)
def load_artifact(name: str) -> Artifact:
    """Load ``solidity/out/<name>.json``, compiling first when missing or stale."""
    path = OUT / f"{name}.json"
    if not path.exists() or not is_fresh():
        compile_contracts()
    if not path.exists():
        raise ChainError(f"no compiled contract named {name!r} in {OUT}")
    data = json.loads(path.read_text())
    return Artifact(name, data["abi"], HexStr(data["bytecode"]), HexStr(data["deployedBytecode"]))


@lru_cache(maxsize=1)
def all_abis() -> tuple[tuple[dict[str, Any], ...], ...]:
    """Every compiled contract's ABI: to decode a custom error whoever raised it."""
    if not is_fresh():
        compile_contracts()
    return tuple(
        tuple(json.loads(p.read_text())["abi"])
        for p in sorted(OUT.glob("*.json"))
        if not p.name.startswith(".")
    )


def abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def error_selectors(abi: Any) -> dict[bytes, tuple[str, list[str]]]:
    """4-byte selector -> (error name, argument types) for every custom error in ``abi``."""
    out: dict[bytes, tuple[str, list[str]]] = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [abi_type(i) for i in item.get("inputs", [])]
        signature = f"{item['name']}({','.join(types)})"
        out[bytes(Web3.keccak(text=signature)[:4])] = (str(item["name"]), types)
    return out


def decode_revert(data: bytes, abis: Any) -> tuple[str, tuple[Any, ...]] | None:
    """Turn revert data into (custom error name, decoded args); None when unknown."""
    if len(data) < 4:
        return None
    selector = data[:4]
    for abi in abis:
        found = error_selectors(abi).get(selector)
        if found is not None:
            name, types = found
            try:
                return name, tuple(abi_decode(types, data[4:]))
            except Exception:
                return name, ()
    if selector == bytes.fromhex("08c379a0"):
        return "Error", tuple(abi_decode(["string"], data[4:]))
    if selector == bytes.fromhex("4e487b71"):
        return "Panic", tuple(abi_decode(["uint256"], data[4:]))
    return None
