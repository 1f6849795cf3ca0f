"""No import cycle in the package: module-level imports (``TYPE_CHECKING`` blocks aside) form
a DAG. ``from pkg import name`` counts as importing ``pkg`` itself (its ``__init__`` must be
far enough along to hand ``name`` over), which is how a module reaching a sibling through
its package closes a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_novaload

ROOT = Path(pytest_novaload.__file__).parent


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["pytest_novaload", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports when it is imported}."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}

    def visit(module: str, body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.If | ast.Try):
                visit(module, node.body)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module in modules and node.module != module:
                    graph[module].add(node.module)
                graph[module].update(f"{node.module}.{a.name}" for a in node.names
                                     if f"{node.module}.{a.name}" in modules)

    for module, path in modules.items():
        visit(module, ast.parse(path.read_text(encoding="utf-8")).body)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                return [*path[path.index(nxt):], nxt]
            if nxt not in done:
                found = walk(nxt, [*path, nxt])
                if found:
                    return found
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            found = walk(start, [start])
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "pytest_novaload.outputs.promrw" in graph["pytest_novaload.outputs"]
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_module_reaching_a_sibling_through_its_package() -> None:
    """What promrw.py once did: ``from pytest_novaload.outputs import _snappy``."""
    graph = {"pkg": {"pkg.a"}, "pkg.a": {"pkg", "pkg.b"}, "pkg.b": set()}
    assert find_cycle(graph) == ["pkg", "pkg.a", "pkg"]
    assert find_cycle({"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}) is None
