"""The ``c2c`` command (typer): ``starter.cli.main`` holds the app and ``main``, the console
script's entry point; ``ops`` the operator's commands (contracts, exceptions, dead letters,
resets); ``kpis`` the KPI report; ``render`` the plain-text tables they print.
``python -m starter.cli`` runs it too.

The CLI is the top of ``starter``: it may import every other room, and none imports it.
"""
