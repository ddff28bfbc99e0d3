"""The oracle's exception tree.

Everything the node raises on purpose derives from :class:`OracleError`, so callers can
catch the family at a boundary (the CLI, a Celery task) and let genuine bugs surface.
"""

from __future__ import annotations


class OracleError(Exception):
    """Root of every error the oracle raises deliberately."""


class ConfigError(OracleError, ValueError):
    """Settings are missing or contradict each other."""


class ChainError(OracleError):
    """The chain (RPC, contracts, transactions) did something we cannot work with."""


class ReorgTooDeepError(ChainError):
    """A reorganisation went deeper than the configured finality depth."""


class TransactionError(ChainError):
    """A transaction could not be simulated, signed, sent or confirmed."""


class InferenceError(OracleError):
    """Running a model failed for a reason that is not the caller's input."""


class InputError(OracleError, ValueError):
    """A request's input does not fit the model: answered with an error fulfilment."""


class ModelError(OracleError):
    """A model file is missing, unreadable, or does not match its registered hash."""


class ProofError(OracleError):
    """Generating or verifying a zero-knowledge proof failed."""


class ToolchainError(OracleError):
    """An external program (anvil, redis-server, node, solc) is missing or failed."""
