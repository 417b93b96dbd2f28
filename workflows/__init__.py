"""Workflows: deterministic orchestration of a contract's life.

Kept free of heavy imports: Temporal's workflow sandbox re-imports this package for every
workflow run, and workflow code may import only ``domain`` and the Temporal SDK.
"""
