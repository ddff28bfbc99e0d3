"""The relayer: a durable transaction manager that posts fulfilments to the Coordinator."""

from oracle.relayer.relayer import Relayer

__all__ = ["Relayer"]
