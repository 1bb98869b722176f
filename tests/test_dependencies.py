"""Declared dependencies match what the package imports: nothing used undeclared, nothing declared unused."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# distributions the package needs without importing them by name
DATA_ONLY = {"tzdata": "IANA zone data that zoneinfo reads where the OS has none (Windows, the binary)"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normalize(re.split(r"[<>=!~ \[;]", dep, maxsplit=1)[0]) for dep in project["dependencies"]}


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "chronary").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"chronary", "__future__"}}


def _imported_distributions() -> dict[str, set[str]]:
    dists = packages_distributions()
    out: dict[str, set[str]] = {}
    for module in _imported_top_levels():
        assert module in dists, f"chronary imports {module!r}, which no installed distribution provides"
        for dist in dists[module]:
            out.setdefault(_normalize(dist), set()).add(module)
    return out


def test_every_imported_package_is_declared() -> None:
    declared = _declared()
    imported = _imported_distributions()
    undeclared = {d: m for d, m in imported.items() if d not in declared}
    # a module may be shipped by several distributions (urllib3 vs urllib3-future): one declared is enough
    missing = {d: m for d, m in undeclared.items() if not any(_owner_declared(mod, declared) for mod in m)}
    assert not missing, f"imported but not declared in pyproject: {missing}"


def _owner_declared(module: str, declared: set[str]) -> bool:
    return any(_normalize(dist) in declared for dist in packages_distributions().get(module, []))


def test_every_declared_dependency_is_used() -> None:
    imported = set(_imported_distributions())
    unused = _declared() - imported - set(DATA_ONLY)
    assert not unused, f"declared in pyproject but never imported by chronary/: {sorted(unused)}"
