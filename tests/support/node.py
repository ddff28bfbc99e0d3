"""The node run in-process (most tests) and its settings. ``new_node`` is the one place
that constructs :class:`oracle.node.Node`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oracle.settings import Settings

if TYPE_CHECKING:
    from oracle.node import Node
    from tests.support.stack import Stack


def new_node(settings: Settings) -> Node:
    """A node on ``settings``, not started, with no HTTP status endpoint."""
    from oracle.node import Node

    return Node.with_celery(settings, serve_status=False)


def fault_settings(stack: Stack, **chain: Any) -> Settings:
    """The stack's settings with ``chain`` overrides, quick rebroadcasts, and a lost
    broker message handed out again quickly."""
    return stack.settings.model_copy(
        update={
            "chain": stack.settings.chain.model_copy(update=chain),
            "relayer": stack.settings.relayer.model_copy(update={"rebroadcast_after_s": 1.0}),
            "worker": stack.settings.worker.model_copy(update={"requeue_after_s": 5.0}),
        }
    )


def start_node(stack: Stack, **chain: Any) -> Node:
    """A started in-process node on :func:`fault_settings`; the caller stops it."""
    node = new_node(fault_settings(stack, **chain))
    node.start()
    return node


def with_relayer_settings(node: Any, **updates: Any) -> None:
    """Change a running node's relayer settings (the relayer reads them on every tick)."""
    relayer = node.relayer
    relayer.settings = relayer.settings.model_copy(
        update={"relayer": relayer.settings.relayer.model_copy(update=updates)}
    )
