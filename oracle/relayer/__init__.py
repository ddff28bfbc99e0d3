"""The relayer: a durable transaction manager that posts fulfilments to the Coordinator."""

from oracle.relayer.core import Relayer

__all__ = ["Relayer"]
