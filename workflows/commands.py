"""What a decider asks the workflow to do: commands, as plain data.

A decider (``workflows.billing``, ``workflows.collections``) is a generator function of the
contract's state (``domain.contract_state.ContractState``), the message it decides and a clock.
It changes the state it is given and yields commands: run a step with this input, record a
line of history, hold the contract for an operator, open or close an exception, wake the main
loop, ask whether a patch applies. The workflow executes each command in the order yielded
(``workflows.run_loop``) and sends its result back into the decider: a step's result (``None``
when an operator skipped it), the operator's action on a hold, an exception's id, the decision
that closed it. The clock reads the workflow's time when the result arrives. A decider touches
no workflow, no activity and no I/O: a test drives it with ``play`` and canned results, without
a server.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.models import ResolveException
from domain.steps import StepInput

T = TypeVar("T")

#: The time, as the workflow knows it (``workflow.now`` in a run, any function in a test).
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RunStep:
    """Run the business step ``name`` (the activity registered under that name) with ``arg``;
    the result is a ``result_type`` (``None`` for a step that returns nothing, or when the
    operator skipped the step after it failed)."""

    name: str
    arg: StepInput
    result_type: type[BaseModel] | None
    summary: str


@dataclass(frozen=True)
class ReadLedger:
    """Read c2c's own ledger with the step ``name`` (retried until it answers, never an
    exception); the result is a ``result_type``."""

    name: str
    arg: StepInput
    result_type: type[BaseModel]
    summary: str


@dataclass(frozen=True)
class Record:
    """Add a line to the contract's history (and the ledger's audit trail)."""

    event: str


@dataclass(frozen=True)
class Hold:
    """Hold the contract with a blocking exception until an operator decides; the result is
    the operator's ``ExceptionAction`` (with ``decision``, the whole ``ResolveException``:
    who decided, and their note)."""

    step: str
    system: str
    code: str
    message: str
    subject: str = ""
    #: The draft invoice the hold waits to have reviewed (its approval or rejection decides
    #: the hold), if any.
    draft_id: str = ""
    decision: bool = False


@dataclass(frozen=True)
class OpenException:
    """Open an exception that holds nothing (a report for a queue); the result is its id."""

    step: str
    system: str
    code: str
    message: str
    subject: str = ""


@dataclass(frozen=True)
class CloseException:
    """Close an exception with the operator's decision on it (or ``default``); the result is
    the decision."""

    exception_id: str
    default: ResolveException | None = None


@dataclass(frozen=True)
class Wake:
    """Something moved the next calendar event (a new invoice, a payment): the main loop
    recomputes its timer."""


@dataclass(frozen=True)
class Patched:
    """Whether this run takes the code path of the patch ``patch_id`` (``workflow.patched``;
    with ``deprecated``, ``workflow.deprecate_patch``, which always takes it): how a decider
    changes what it asks for without breaking the replay of contracts already running."""

    patch_id: str
    deprecated: bool = False


Command = RunStep | ReadLedger | Record | Hold | OpenException | CloseException | Wake | Patched

#: A decision in progress: yields commands, receives their results, returns ``T``.
Decision = Generator[Command, Any, T]


def play(decision: Decision[T], answer: Callable[[Command], Any]) -> tuple[list[Command], T]:
    """Drive ``decision`` to its end outside any workflow: ``answer`` gives each command's
    result. Returns the commands in the order they were yielded, and the decision's value."""
    commands: list[Command] = []
    reply: Any = None
    while True:
        try:
            command = decision.send(reply)
        except StopIteration as done:
            return commands, done.value
        commands.append(command)
        reply = answer(command)
