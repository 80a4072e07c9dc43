"""The import graph of the package, read from the source (function-local imports included): no circle between
files or between packages, and no private name taken from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, name)} for every ``from . import`` anywhere in the file."""
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    found: dict[str, set[tuple[str, str]]] = {}
    for module, path in modules.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        edges = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                edges.add((target, "") if target in modules else (base, alias.name))
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
            if not state.get(nxt) and (found := visit(nxt, trail + [nxt])):
                return found
        state[node] = 2
        return None

    for start in graph:
        if not state.get(start) and (found := visit(start, [start])):
            return found
    return None


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


@pytest.fixture(scope="module")
def imports():
    return _imports()


def test_no_import_circle_between_files(imports):
    graph = {m: {t for t, _ in edges if t != m} for m, edges in imports.items()}
    assert _cycle(graph) is None


def test_no_import_circle_between_packages(imports):
    graph: dict[str, set[str]] = {}
    for module, edges in imports.items():
        graph.setdefault(_room(module), set()).update(_room(t) for t, _ in edges if _room(t) != _room(module))
    assert _cycle(graph) is None


def test_no_private_name_crosses_modules(imports):
    crossing = [(m, t, n) for m, edges in imports.items() for t, n in edges if n.startswith("_") and t != m]
    assert crossing == []


def test_the_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
