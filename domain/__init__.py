"""Canonical contract-to-cash model: payloads, money, periods and pricing.

Workflow code imports only this package and the Temporal SDK, so nothing here does I/O.
"""
