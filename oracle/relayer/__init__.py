"""The relayer: a durable transaction manager that posts fulfilments to the Coordinator.

``Relayer`` is imported on first use, so that the workers' wake-up module
(:mod:`oracle.relayer.wake`) does not pull in web3 and the relayer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oracle.relayer.relayer import Relayer

__all__ = ["Relayer"]


def __getattr__(name: str) -> Any:
    if name == "Relayer":
        from oracle.relayer.relayer import Relayer

        return Relayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
