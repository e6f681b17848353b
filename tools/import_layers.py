"""Print the package's import layers and any import cycle, from the source (nothing is imported).

    python -m tools.import_layers             # every module, by layer
    python -m tools.import_layers --packages  # top-level modules and packages, by layer

Every ``import`` counts, those inside functions too (a lazy import still ties two modules).
A layer imports only from the layers below it; a cycle is printed and makes the exit code 1.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "onnxdream"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

NESTED_GRAPHS = frozenset(
    {
        "onnxdream.mirror.module",
        "onnxdream.mirror.subgraph",
        "onnxdream.mirror.function",
        "onnxdream.mirror.ops",
    }
)
"""Where recursion is the design: an If/Loop body or a function body is mirrored by a ``Mirror``."""


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def _owner(name: str, modules: Iterable[str]) -> str | None:
    """The module that ``name`` (a module, or an attribute imported from one) lives in."""
    known = set(modules)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its body)."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                owner = _owner(target, modules) if target.startswith(PACKAGE + ".") else None
                # A module importing its own package's __init__ (or itself) is not an edge.
                if owner and owner != name and not name.startswith(owner + "."):
                    graph[name].add(owner)
    return graph


def collapse(graph: dict[str, set[str]], depth: int = 2) -> dict[str, set[str]]:
    """The graph between the first ``depth`` name components (``onnxdream.mirror``, ...)."""

    def head(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    collapsed: dict[str, set[str]] = {}
    for source, targets in graph.items():
        collapsed.setdefault(head(source), set())
        collapsed[head(source)] |= {head(t) for t in targets if head(t) != head(source)}
    return collapsed


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules grouped by layer: 0 imports nothing of the package, n imports layers below n."""
    level: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in level:
            below = [depth(t, seen | {node}) for t in graph.get(node, ()) if t not in seen | {node}]
            level[node] = 1 + max(below, default=-1)
        return level[node]

    for node in graph:
        depth(node)
    grouped: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node, n in level.items():
        grouped[n].append(node)
    return [sorted(group) for group in grouped]


def unexpected_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles outside the mirror's nested-graph recursion."""
    outside = {
        m: {t for t in ts if not _inside_mirror(t)} for m, ts in graph.items() if not _inside_mirror(m)
    }
    return cycles(outside)


def _inside_mirror(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in NESTED_GRAPHS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", action="store_true", help="top-level modules and packages only")
    args = parser.parse_args(argv)
    graph = import_graph()
    shown = collapse(graph) if args.packages else graph
    if args.packages:
        for component in cycles(shown):
            # A package can sit both below and above another one (names: its strategies are
            # below export, its rename verb above model); its layer is then approximate.
            print("packages straddling each other: " + ", ".join(component), file=sys.stderr)
    for n, group in enumerate(layers(shown)):
        print(f"layer {n}: " + ", ".join(name.removeprefix(PACKAGE + ".") for name in group))
    problems = unexpected_cycles(graph)
    for component in problems:
        print("cycle: " + " <-> ".join(component), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
