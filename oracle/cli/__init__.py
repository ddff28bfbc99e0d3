"""The ``oracle`` command line."""

from oracle.cli.app import app, main

__all__ = ["app", "main"]
