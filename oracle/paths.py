"""Where the project's own files are: the one place the repository root is worked out."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (``models/``, ``solidity/``, ``migrations/``, ``var/``)."""
