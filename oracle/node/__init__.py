"""The node: listener, re-dispatcher, relayer and HTTP endpoint, run under one supervisor.

``Node`` is imported on first use, so that a light submodule (``oracle.node.metrics_latency``,
read by the CLI) does not pull in web3 and the whole node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oracle.node.node import Node

__all__ = ["Node"]


def __getattr__(name: str) -> Any:
    if name == "Node":
        from oracle.node.node import Node

        return Node
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
