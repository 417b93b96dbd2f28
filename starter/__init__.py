"""How the outside world reaches c2c: the HTTP API, the dashboard, the CLI, the operations
they share, and the local stack ``c2c up`` runs.

Five rooms, each a subpackage: ``starter.api`` (the FastAPI app), ``starter.dashboard`` (its
HTML pages), ``starter.ops`` (dead letters, the event queue, the exception queue, resets),
``starter.cli`` (the ``c2c`` command) and ``starter.stack`` (``c2c up``, its supervisor and the
demo). Which room may import which is stated in each room's ``__init__`` and checked by the
import contracts in ``pyproject.toml`` (docs/development.md).
"""
