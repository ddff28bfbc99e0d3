"""Scenario demos: contracts that act on proved model outputs (see each module)."""
