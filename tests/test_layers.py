"""The import direction holds (docs/design.md, "Layers").

cli -> collect/export/sync/xlsform -> engine/forms/store -> base modules. Every module under
src/yntymak_cli is imported, and its imports are read from its syntax tree: module-level,
function-level (the CLI imports lazily) and `if TYPE_CHECKING:` imports alike, since a
type-only import is still a dependency of the design. The test fails on

- an import that goes up the layers,
- a cycle between packages (or base modules), and
- a cycle between the modules of one package.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import yntymak_cli

PACKAGE = "yntymak_cli"

# Top to bottom. A module may import from its own layer or any layer below it; a cycle
# inside a layer is caught by the cycle checks. "yntymak_cli" is the package's __init__
# (the version). Base modules are layered too: errors may not reach up to config.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("commands", frozenset({"__main__", "cli"})),
    ("server", frozenset({"server"})),
    ("services", frozenset({"collect", "export", "quality", "sync", "xlsform"})),
    ("core", frozenset({"engine", "forms", "store"})),
    ("base: settings, outputs", frozenset({"config", "outputs"})),
    ("base: files, home, YAML", frozenset({"files", "home", "yaml_io", "yaml_fast"})),
    ("base: errors", frozenset({"errors"})),
    ("base: leaves", frozenset({PACKAGE, "i18n", "limits", "canonical", "plain"})),
]

# Edges kept on purpose (importer unit, imported unit): reason. They are left out of both
# checks. Each one is imported lazily, inside the function that needs it.
ALLOWED: dict[tuple[str, str], str] = {
    ("i18n", "config"): (
        "the message language falls back to `lang` in HOME/config.json "
        "(i18n.current_lang reads it through config.config_lang); config's own messages "
        "go through i18n. Passing the language in instead would touch every message."
    ),
    ("config", "store"): (
        "`config set|unset|show enumerator` reads and writes the database's settings "
        "table (the enumerator is remembered per home by `collect`); the file keys "
        "never open the database."
    ),
    ("yaml_io", "yaml_fast"): (
        "one loader in two files: yaml_io.load_yaml hands plain files to libyaml "
        "(yaml_fast), which falls back to yaml_io for exact positions and errors."
    ),
}

Edge = tuple[str, str]
Sites = dict[Edge, list[str]]


def _layer_of(unit: str) -> int:
    for i, (_, units) in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"{unit!r} is in no layer: place it in LAYERS (and docs/design.md)")


def _unit(module: str) -> str:
    """The package or base module a module belongs to: yntymak_cli.engine.fill -> engine."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_files(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module under `root` (the package folder) by dotted name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((package, *parts))] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        parts = module.split(".")
        anchor = parts if is_pkg else parts[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{a.name}" for a in node.names)]


def module_graph(files: dict[str, Path]) -> Sites:
    """(importer, imported) module pairs, each with the places it is imported (file:line)."""
    sites: Sites = defaultdict(list)
    for module, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _imported(node, module, is_pkg)
            if isinstance(node, ast.ImportFrom):
                # `from pkg import sub` imports the module pkg.sub; `from mod import name`
                # imports mod.
                subs = [n for n in names[1:] if n in files]
                names = subs if len(subs) == len(names) - 1 else [names[0], *subs]
            for name in names:
                while name not in files and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in files and name != module:
                    sites[(module, name)].append(f"{path.name}:{node.lineno}")
    return sites


def unit_graph(modules: Sites) -> Sites:
    sites: Sites = defaultdict(list)
    for (a, b), where in modules.items():
        if _unit(a) != _unit(b):
            sites[(_unit(a), _unit(b))].extend(f"{a} ({w})" for w in where)
    return sites


def cycles(edges: Sites) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _explain(component: list[str], edges: Sites) -> str:
    inside = [
        f"  {a} -> {b}: {', '.join(where[:3])}"
        for (a, b), where in sorted(edges.items())
        if a in component and b in component
    ]
    return " <-> ".join(component) + "\n" + "\n".join(inside)


def problems(root: Path) -> list[str]:
    """Every layering problem of the package at `root`, one message each."""
    modules = module_graph(module_files(root))
    units = {e: w for e, w in unit_graph(modules).items() if e not in ALLOWED}
    out = [
        f"{a} imports {b}, a layer up: {', '.join(where[:3])}"
        for (a, b), where in sorted(units.items())
        if _layer_of(b) < _layer_of(a)
    ]
    out += [f"import cycle between packages: {_explain(c, units)}" for c in cycles(units)]
    inner = {(a, b): w for (a, b), w in modules.items() if _unit(a) == _unit(b)}
    out += [f"import cycle between modules: {_explain(c, inner)}" for c in cycles(inner)]
    return out


ROOT = Path(yntymak_cli.__file__).parent


def test_every_module_imports():
    walked = {PACKAGE}
    for info in pkgutil.walk_packages(yntymak_cli.__path__, prefix=f"{PACKAGE}."):
        importlib.import_module(info.name)
        walked.add(info.name)
    assert walked == set(module_files(ROOT))  # the graph below reads the same modules


def test_every_package_is_in_a_layer():
    for module in module_files(ROOT):
        _layer_of(_unit(module))


def test_imports_go_down_the_layers_without_cycles():
    assert problems(ROOT) == []


def test_allowed_edges_are_still_needed():
    """An exception that no import uses any more is removed, so it cannot hide a new one."""
    used = set(unit_graph(module_graph(module_files(ROOT))))
    assert set(ALLOWED) - used == set()


def test_the_check_sees_cycles_and_upward_imports(tmp_path):
    """The checker itself: a package where forms and store import each other, engine's
    modules import each other, and errors reaches up into store."""
    files = {
        "__init__.py": "",
        "errors.py": "def f():\n    from yntymak_cli.store import db\n",
        "forms/__init__.py": "",
        "forms/library.py": "from yntymak_cli.store.db import Store\n",
        "store/__init__.py": "",
        "store/db.py": "from yntymak_cli.forms import library\n",
        "engine/__init__.py": "",
        "engine/survey.py": "def fill():\n    from yntymak_cli.engine.fill import fill\n",
        "engine/fill.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from yntymak_cli.engine.survey import Engine\n"
        ),
    }
    root = tmp_path / PACKAGE
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    found = problems(root)
    assert any(p.startswith("errors imports store, a layer up") for p in found)
    assert any("between packages: forms <-> store" in p for p in found)
    engine_cycle = "between modules: yntymak_cli.engine.fill <-> yntymak_cli.engine.survey"
    assert any(engine_cycle in p for p in found)
