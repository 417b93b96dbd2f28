"""Loopback ports for the servers that tests and benchmarks start side by side.

A port from ``bind(("127.0.0.1", 0))`` comes from the kernel's ephemeral range (32768–60999 on
Linux), the same range the Temporal dev server draws its internal ports from (its HTTP, metrics
and internal service ports) and outgoing connections use. A port picked that way and released
can be taken by one of those before the server meant for it binds it. Ports below the range are
never handed out by the kernel, so a port picked there stays free unless someone asks for it
by number.
"""

from __future__ import annotations

import random
import socket

#: Where ``free_port`` looks: below the ephemeral range, above the well-known services.
PORT_RANGE = range(20000, 30000)

#: Seeded from the OS, so test runs that share a machine draw different sequences even if a
#: test seeds the global ``random``.
_rng = random.Random()
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host``, outside the ephemeral range, that is free right now.

    Each call in a process gives a different port, checked by binding it.

    Raises:
        RuntimeError: When no free port was found in ``PORT_RANGE`` after many tries.
    """
    for _ in range(1000):
        port = _rng.choice(PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on {host} in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")
