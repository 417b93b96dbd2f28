"""Which asyncio event loop c2c's long-running processes run on (``C2C_EVENT_LOOP``).

uvloop (libuv) spends markedly less CPU per socket operation than asyncio's own loop: in a
month-end close the worker, whose steps are mostly HTTP calls to the systems, used about a
third less CPU per contract on it (docs/performance.md). ``auto`` takes uvloop where it is
installed (it is a dependency everywhere but on Windows) and asyncio's loop otherwise;
``asyncio`` is the way back should a library misbehave on uvloop.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Literal

EventLoop = Literal["auto", "uvloop", "asyncio"]


class EventLoopUnavailable(ValueError):
    """``C2C_EVENT_LOOP=uvloop`` where uvloop is not installed."""


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: EventLoop) -> Literal["uvloop", "asyncio"]:
    """The loop ``choice`` means here (also the name uvicorn's ``loop`` option takes)."""
    if choice == "asyncio":
        return "asyncio"
    if uvloop_installed():
        return "uvloop"
    if choice == "uvloop":
        raise EventLoopUnavailable(
            "C2C_EVENT_LOOP=uvloop, but uvloop is not installed (it has no Windows build): "
            "install it or set C2C_EVENT_LOOP=asyncio"
        )
    return "asyncio"


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of new event loops of the kind ``choice`` means, for ``asyncio.Runner``."""
    if resolve(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def running_loop() -> Literal["uvloop", "asyncio"]:
    """The kind of the event loop this coroutine runs on (for the start-up log line)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
