"""The node: listener and relayer wired together, with health and an HTTP endpoint."""

from oracle.node.node import Node

__all__ = ["Node"]
