"""On-chain AI coprocessor and oracle: the off-chain node."""

__version__ = "0.1.0"
