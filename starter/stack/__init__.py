"""The local stack: ``c2c up`` (``starter.stack.up``) and the components it starts, the
supervisor that keeps them running, and the demo that drives a contract through it.

It starts components as separate processes (``python -m starter.cli ...``) and talks to them
over HTTP and Temporal. It may import ``starter.api`` (tokens, the state directory, the codec
server's checks), never ``starter.dashboard``, ``starter.ops`` or ``starter.cli``.
"""
