"""Workflows: deterministic orchestration of a contract's life.

Workflow code may import only ``domain`` and the Temporal SDK. The worker shares these modules
with its sandboxed runs (``worker.PASSED_THROUGH``) instead of importing them afresh per run, so
they must hold no mutable module-level state; the replay tests run them under the SDK's default
sandbox, which re-imports them and checks every restricted call.
"""
