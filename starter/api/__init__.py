"""The HTTP API: the FastAPI app (``starter.api.app``), its routes, webhooks (and their
OpenAPI schemas) and updates, the error answers, middleware, tokens, the codec server, the KPI
endpoint, the API's metrics, and ``ApiContext`` (settings, the Temporal client, the ledger)
that handlers share.

It reaches systems of record only through Temporal (workflows and their activities) and reads
the ledger; it makes no connector calls of its own. It may import ``starter.ops`` (the
operations it shares with the CLI) and mounts ``starter.dashboard`` in the app factory; it
never imports ``starter.cli`` or ``starter.stack``.
"""
