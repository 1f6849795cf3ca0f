"""How many stand-in worker processes a run needs, from its plan and the machine.

The root conftest starts the stand-in before pytest collects (and, under xdist, before the
workers that collect exist), so the plan is read from the test files' source: `load_markers`
finds each test function's `@pytest.mark.load(...)` keywords whose values are literals or
module-level names bound to literals (the suites' STAGES, THRESHOLDS), without importing the
module. `workers_for` turns the peak VU count into processes: one per VUS_PER_WORKER users
(at most one per core: more processes than cores add no CPU), and never fewer than the open
file limit demands (each held connection is one descriptor in some worker).
"""

from __future__ import annotations

import ast
import contextlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FD_RESERVE",
    "MAX_WORKERS",
    "SMALL_PLAN",
    "VUS_PER_WORKER",
    "Sizing",
    "load_markers",
    "pool_size_for",
    "selected_files",
    "workers_for",
]

#: users one stand-in process serves well (one aiohttp loop on one core: ~1K VM CRUD
#: requests/s measured at 10K users, each user about one request a second)
VUS_PER_WORKER = 2000
#: below this peak one process is plenty (the PR-gate profile stays on one worker)
SMALL_PLAN = VUS_PER_WORKER
#: descriptors each worker keeps for its pool, logs and listening socket
FD_RESERVE = 256
MAX_WORKERS = 64
#: PostgreSQL connections the stand-in's pools may use together (the throwaway cluster has
#: max_connections = 300; the load suites' own pool and superuser slots need the rest)
PG_BUDGET = 200


@dataclass(frozen=True)
class Sizing:
    """The chosen worker count and the sentence saying why (for the report header)."""

    workers: int
    reason: str


def workers_for(peak_vus: int, *, cores: int, nofile: int) -> Sizing:
    """Workers for a plan whose busiest test holds ``peak_vus`` users/connections at once, on
    ``cores`` CPUs with ``nofile`` descriptors per process."""
    cores = max(1, cores)
    per_process = max(1, nofile - FD_RESERVE)
    by_fds = math.ceil(peak_vus / per_process)
    by_load = 1 if peak_vus < SMALL_PLAN else min(cores, math.ceil(peak_vus / VUS_PER_WORKER))
    workers = max(1, min(MAX_WORKERS, max(by_load, by_fds)))
    if by_fds > by_load:
        why = (f"peak {peak_vus:,} connections, {nofile:,} open files per process: "
               f"{by_fds} processes to hold them")
    elif peak_vus < SMALL_PLAN:
        why = f"peak {peak_vus:,} VUs < {SMALL_PLAN:,}: one process"
    else:
        why = (f"peak {peak_vus:,} VUs, {cores} cores: one per {VUS_PER_WORKER:,} VUs, "
               "at most one per core")
    if workers < max(by_load, by_fds):
        why += f" (capped at {MAX_WORKERS})"
    return Sizing(workers, why)


def pool_size_for(workers: int, wanted: int = 20) -> int:
    """Each worker's asyncpg pool, so that all of them fit the cluster's connection budget."""
    return max(2, min(wanted, PG_BUDGET // max(1, workers)))


def selected_files(args: Sequence[str], *, invocation_dir: Path, rootdir: Path,
               served: Sequence[str]) -> list[tuple[Path, str | None]]:
    """The test files under the ``served`` folders that positional ``args`` may select, each
    with the test function an arg names (``file.py::test_x``), None for the whole file."""
    root = Path(rootdir).resolve()
    targets = [root / d for d in served]
    found: dict[tuple[Path, str | None], None] = {}
    for arg in [a for a in args if not a.startswith("-")] or [str(root)]:
        path_text, _, rest = arg.partition("::")
        path = (Path(invocation_dir) / path_text).resolve()
        func = rest.split("::")[-1].split("[")[0] if rest else ""
        for target in targets:
            if path.is_file() and (path == target or target in path.parents):
                found[(path, func or None)] = None
            elif path.is_dir() and (path == target or target in path.parents
                                    or path in target.parents):
                base = path if target in path.parents or path == target else target
                for f in sorted(base.rglob("test_*.py")):
                    found[(f, None)] = None
    return list(found)


def _literals(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = <literal>`` bindings (later ones win, as at import)."""
    names: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        try:
            names[target] = _evaluate(value, names)
        except ValueError:
            names.pop(target, None)
    return names


def _evaluate(node: ast.expr, names: dict[str, Any]) -> Any:
    """A literal, with module-level literal names substituted (ValueError otherwise)."""
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise ValueError(node.id)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        items = [_evaluate(e, names) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("**")
        return {_evaluate(k, names): _evaluate(v, names)
                for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(ast.dump(node)[:40]) from None


def _load_decorator(node: ast.expr) -> ast.Call | None:
    """``@pytest.mark.load(...)`` (or ``@mark.load(...)``) as a call node."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "load":
        owner = node.func.value
        if (isinstance(owner, ast.Attribute) and owner.attr == "mark") or \
                (isinstance(owner, ast.Name) and owner.id == "mark"):
            return node
    return None


def load_markers(path: Path, func: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(test name, marker keywords) of each load-marked test function in ``path`` (or only
    ``func``); keywords that are not literals are left out. Unreadable files give []."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return []
    names = _literals(tree)
    out: list[tuple[str, dict[str, Any]]] = []
    for node in _functions(tree.body):
        if not node.name.startswith("test") or (func is not None and node.name != func):
            continue
        for deco in node.decorator_list:
            call = _load_decorator(deco)
            if call is None:
                continue
            kwargs: dict[str, Any] = {}
            for kw in call.keywords:
                if kw.arg is None:
                    continue
                with contextlib.suppress(ValueError):
                    kwargs[kw.arg] = _evaluate(kw.value, names)
            out.append((node.name, kwargs))
    return out


def _functions(body: Iterable[ast.stmt]) -> Iterable[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            yield from _functions(node.body)
