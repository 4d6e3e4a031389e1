"""The code's layers: dependencies point one way, ``api → health → core → accounts``.

Reads every module's imports (top level and inside functions) with ``ast``; no module is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "releases", "config", "benchmarks")

# The release domain: models, writes, access, versions and the search grammar.
CORE = (
    "releases.models",
    "releases.services",
    "releases.access",
    "releases.versioning",
    "releases.querysyntax",
    "releases.signals",
    "releases.apps",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import reads`` imports the module ``<package>.reads``.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {
    module_name(path): imports_of(path)
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
}


def within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def offenders(importers: tuple[str, ...] | str, forbidden: tuple[str, ...] | str) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if within(module, importers)
        for target in targets
        if within(target, forbidden)
    )


def test_the_modules_were_read():
    assert {"releases.api.releases", "releases.health.reads", "releases.models.core"} <= set(
        MODULES
    )


@pytest.mark.parametrize(
    ("importers", "forbidden"),
    [
        ("accounts", ("releases", "config", "benchmarks")),
        (CORE, ("releases.api", "releases.health", "releases.admin", "rest_framework")),
        ("releases.health", ("releases.api", "releases.admin", "config")),
        ("releases.api", ("releases.admin", "config")),
        ("releases.querysyntax", ("django", "releases")),
    ],
)
def test_dependencies_point_one_way(importers, forbidden):
    assert offenders(importers, forbidden) == []


def test_no_import_cycles_between_modules():
    ours = {name for name in MODULES if within(name, "releases")}
    graph = {name: {t for t in MODULES[name] if t in ours and t != name} for name in ours}
    # A package's __init__ re-exporting its modules is not a cycle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(f"{t}.")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
