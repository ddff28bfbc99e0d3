"""The watcher: checks other nodes' optimistic answers against the circuit and challenges
the wrong ones (see :mod:`oracle.watcher.watcher`)."""

from oracle.watcher.watcher import Watcher, build_watcher

__all__ = ["Watcher", "build_watcher"]
