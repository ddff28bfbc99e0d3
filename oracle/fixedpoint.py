"""Fixed-point numbers as they travel on chain: ``value = int / 2**scale``."""

from __future__ import annotations

import math

INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1

BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""Order of the BN254 scalar field, where EZKL's public instances live."""


def to_fixed(value: float, scale: int) -> int:
    """Round ``value`` to the nearest representable fixed-point integer at ``scale``."""
    if not math.isfinite(value):
        raise ValueError(f"cannot encode non-finite value {value!r}")
    scaled = round(value * (1 << scale))
    if not INT256_MIN <= scaled <= INT256_MAX:
        raise ValueError(f"{value!r} at scale {scale} does not fit in int256")
    return int(scaled)


def from_fixed(raw: int, scale: int) -> float:
    return raw / (1 << scale)
