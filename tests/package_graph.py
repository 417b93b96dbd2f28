"""The import graph between c2c's packages (and the rooms of ``starter``), from ``grimp``,
which ``import-linter`` brings.

``.venv/bin/python -m tests.package_graph`` prints each package and the packages it imports;
``--dot`` prints the graph in Graphviz's language instead (``| dot -Tsvg > packages.svg``).
``tests/test_layers.py`` checks that the graph has no cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import grimp

#: c2c's top-level packages (``worker.py`` is a module beside them that imports them all).
PACKAGES = (
    "c2c",
    "domain",
    "workflows",
    "activities",
    "connectors",
    "ledger",
    "sandbox",
    "starter",
)


def node(module: str, *, rooms: bool) -> str:
    """The node a module belongs to: its top-level package, or its room of ``starter``."""
    parts = module.split(".")
    if rooms and parts[0] == "starter" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def package_graph(*, rooms: bool = False) -> dict[str, set[str]]:
    """Each package (or room of ``starter``) and the others it imports directly."""
    graph = grimp.build_graph(*PACKAGES)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = node(module, rooms=rooms)
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(module):
            target = node(imported, rooms=rooms)
            if target != source:
                edges[source].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def dot(edges: dict[str, set[str]]) -> Iterable[str]:
    """The graph in Graphviz's language."""
    yield "digraph c2c {"
    yield "  rankdir=TB;"
    for source in sorted(edges):
        yield f'  "{source}";'
        for target in sorted(edges[source]):
            yield f'  "{source}" -> "{target}";'
    yield "}"


def main(argv: list[str]) -> int:
    edges = package_graph(rooms="--packages-only" not in argv)
    if "--dot" in argv:
        print("\n".join(dot(edges)))
        return 0
    for source in sorted(edges):
        print(f"{source} -> {', '.join(sorted(edges[source])) or '(nothing of c2c)'}")
    for group in cycles(edges):
        print(f"cycle: {' <-> '.join(group)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
