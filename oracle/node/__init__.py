"""The node: listener, re-dispatcher, relayer and HTTP endpoint, run under one supervisor."""

from oracle.node.node import Node

__all__ = ["Node"]
