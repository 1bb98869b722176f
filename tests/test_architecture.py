"""The layering the tree promises, checked on its imports: front doors → services → store, with
providers and the iCalendar codec beside them, and no import cycles anywhere in the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chronary"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """module → the chronary modules it imports (at any level, TYPE_CHECKING blocks excluded)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                if target in modules and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ importing its own submodules is not a cycle worth reporting
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".") or "." in t[len(name) + 1 :]}
    assert len(graph) > 100
    assert _cycles(graph) == []


def _imports_from(prefix: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    graph = _graph()
    return {
        name: sorted(t for t in targets if t.startswith(forbidden))
        for name, targets in graph.items()
        if name.startswith(prefix) and any(t.startswith(forbidden) for t in targets)
    }


def test_layers_depend_one_way() -> None:
    front_doors = ("chronary.api", "chronary.app", "chronary.cli")
    assert _imports_from("chronary.providers", ("chronary.services", "chronary.store", *front_doors)) == {}
    assert _imports_from("chronary.ical", ("chronary.services", "chronary.store", "chronary.providers")) == {}
    assert _imports_from("chronary.store", ("chronary.services", "chronary.providers", *front_doors)) == {}
    assert _imports_from("chronary.services", front_doors) == {}


def test_sql_lives_in_the_store() -> None:
    """Only chronary/store executes SQL (migrations and the connection itself are in there too)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "store"):
            continue
        text = path.read_text(encoding="utf-8")
        if ".execute(" in text and "conn" in text:
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
