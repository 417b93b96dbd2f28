"""What every benchmark script shares: its options, its stack, and where its result goes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any

from bench.report import RESULTS_DIR, Result, save
from bench.stack import BenchStack

Benchmark = Callable[[BenchStack, argparse.Namespace], Coroutine[Any, Any, Result]]


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the stack keeps its state and stack.log (default: a new temp directory)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"where the result (JSON and markdown) and profiles go (default: {RESULTS_DIR})",
    )
    return p


def run(
    p: argparse.ArgumentParser,
    benchmark: Benchmark,
    *,
    components: Collection[str] = ("sandbox", "worker", "api", "baseline"),
    env: dict[str, str] | None = None,
    stack_options: Callable[[argparse.Namespace], dict[str, Any]] | None = None,
    failure: Callable[[Result], str | None] | None = None,
) -> None:
    """Parse the options, run ``benchmark`` on a fresh stack, save its result, and exit.

    Args:
        stack_options: More arguments for ``BenchStack``, from the options.
        failure: What makes a saved result a failed run (exit non-zero), if anything.
    """
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="c2c-bench-"))
    print(f"stack state and log in {workdir}", flush=True)
    code = 0
    options = stack_options(args) if stack_options else {}
    try:
        with BenchStack(workdir, components=components, env=env, **options) as stack:
            result = asyncio.run(benchmark(stack, args))
        save(result, args.results_dir)
        failed = failure(result) if failure else None
        if failed:
            print(f"benchmark failed: {failed}", file=sys.stderr)
            code = 1
    except Exception as exc:
        traceback.print_exc()
        print(f"benchmark failed: {exc!r}; see {workdir / 'stack.log'}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown, where the SDK's runtime can crash (sdk-python#300).
    os._exit(code)
