"""The export package's import graph: one direction, no cycle, no import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import streamguard.exports

PACKAGE = "streamguard.exports"
SOURCE = Path(streamguard.exports.__file__).parent

# Who may import whom inside the package, lowest layer first. A new edge is a design change:
# add it here on purpose, never one that points back up.
LAYERS: dict[str, set[str]] = {
    "csvfile": set(),
    "layouts": {"csvfile"},
    "orgs": set(),
    "progress": set(),
    "options": {"orgs"},
    "judge": {"layouts", "orgs"},
    "summary": {"judge", "layouts", "orgs"},
    "report": {"summary"},
    "cli": {"judge", "layouts", "options", "orgs", "progress", "report", "summary"},
    "sharelist": {"csvfile", "layouts"},
    "sharing": {"layouts", "orgs", "sharelist"},
    "drift": {"sharing"},
    "sharing_summary": {"drift", "sharelist", "sharing", "summary"},
    "sharing_report": {"drift", "report", "sharing", "sharing_summary"},
    "sharing_cli": {
        "drift",
        "layouts",
        "options",
        "orgs",
        "progress",
        "sharelist",
        "sharing",
        "sharing_report",
        "sharing_summary",
    },
}


def package_imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """(module of this package, imported at module level) for every import in `tree`."""
    top = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == PACKAGE:
                names = [alias.name for alias in node.names]
            elif node.module.startswith(PACKAGE + "."):
                names = [node.module.removeprefix(PACKAGE + ".")]
        elif isinstance(node, ast.Import):
            names = [
                alias.name.removeprefix(PACKAGE + ".")
                for alias in node.names
                if alias.name.startswith(PACKAGE + ".")
            ]
        found.extend((name.split(".")[0], id(node) in top) for name in names)
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(SOURCE.glob("*.py")):
        if path.stem == "__init__":
            continue
        imports = package_imports(ast.parse(path.read_text("utf-8"), str(path)))
        nested = [name for name, at_top in imports if not at_top]
        assert not nested, f"{path.name} imports {nested} inside a function or block"
        edges[path.stem] = {name for name, _ in imports}
    return edges


def test_the_import_graph_is_the_documented_layering() -> None:
    assert graph() == LAYERS


def test_the_layering_has_no_cycle() -> None:
    """Every module's imports come before it in LAYERS' order, so none can reach back to it."""
    order = list(LAYERS)
    for module, imports in LAYERS.items():
        assert all(order.index(i) < order.index(module) for i in imports), module
