"""The package layers import only downward, and no module imports itself back at load time.

Read from the source with `ast` (nothing is imported), so the check also sees imports inside
functions, which the CLI and the worker use to load heavy modules late. The rules are the
README's (Layout):

- `core` imports nothing of ours but itself and `exceptions`;
- `trail` may add `core`; `stream` may add `trail`; `worker` may add `stream`;
- `exports` imports `core` (and the stream's intake); `keytool` (the administrator's key
  commands) imports `core` only;
- `local` (the demo, the local broker, test helpers) is imported by no other layer;
- `exceptions` and `serde` import nothing of ours, `settings` only `exceptions`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parents[2] / "src" / "streamguard"

# What each part of the package may import, besides itself. A part is a subpackage (`core`) or a
# top-level module (`settings`); `streamguard` is the package's own __init__ (its version).
_LEAVES: Final = frozenset({"streamguard", "exceptions", "serde"})
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "exceptions": frozenset(),
    "serde": frozenset(),
    "streamguard": frozenset(),
    "settings": frozenset({"exceptions"}),
    # Which build runs (pure or mypyc-compiled): module names as strings, never imported.
    "compiled": frozenset(),
    "core": frozenset({"exceptions"}),
    "trail": _LEAVES | {"settings", "core"},
    "stream": _LEAVES | {"settings", "core", "trail"},
    # A policy log is replayed through the stream's front door (intake), as `evaluate` does.
    "exports": _LEAVES | {"core", "stream"},
    "keytool": _LEAVES | {"core"},
    # The camera edge turns vendor bodies into contract events; it never decides them.
    "ingest": _LEAVES | {"settings", "core"},
    "worker": _LEAVES | {"settings", "core", "trail", "stream"},
    "local": _LEAVES | {"settings", "core", "trail", "stream", "worker"},
    "cli": _LEAVES
    | {"settings", "compiled", "core", "trail", "stream", "exports", "ingest", "keytool"}
    | {"worker", "local"},
    "__main__": frozenset({"cli"}),
}


def _module_name(path: Path) -> str:
    parts = ("streamguard", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _deferred(node: ast.AST) -> bool:
    """A block whose imports do not run when the module loads: a function, a type-only block."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        return True
    return isinstance(node, ast.If) and _is_type_checking(node)


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported streamguard module, imported at load time?) for every import in `path`.

    Load time means at module level, outside `if TYPE_CHECKING:`; an import in a function body
    runs only when the function does.
    """
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, at_load: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, at_load
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join([*base, child.module] if child.module else base)
                else:
                    target = child.module or ""
                yield target, at_load
                # `from streamguard.core import codes` imports the module streamguard.core.codes.
                for alias in child.names:
                    submodule = PACKAGE.parent.joinpath(*target.split("."), alias.name)
                    if submodule.with_suffix(".py").is_file() or submodule.is_dir():
                        yield f"{target}.{alias.name}", at_load
            elif _deferred(child):
                yield from visit(child, False)
            else:
                yield from visit(child, at_load)

    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for target, at_load in visit(tree, True):
        if target == "streamguard" or target.startswith("streamguard."):
            yield target, at_load


def _part(module: str) -> str:
    """`streamguard.core.engine` -> `core`; `streamguard.settings` -> `settings`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "streamguard"


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module_name(path): list(_imports(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_part_of_the_package_has_a_rule() -> None:
    """A new subpackage or top-level module must be placed in a layer before it can land."""
    parts = {_part(module) for module in _graph()}
    assert parts <= set(ALLOWED), f"no layer rule for {sorted(parts - set(ALLOWED))}"
    assert {"core", "stream", "trail", "worker", "local", "exports"} <= parts


def test_layers_import_only_what_they_may() -> None:
    violations = [
        f"{module} imports {target}"
        for module, imports in _graph().items()
        for target, _ in imports
        if _part(target) != _part(module) and _part(target) not in ALLOWED[_part(module)]
    ]
    assert not violations, "\n".join(violations)


def test_no_import_cycle_at_load_time() -> None:
    graph = _graph()
    edges = {
        module: {target for target, at_load in imports if at_load and target in graph}
        for module, imports in graph.items()
    }
    for module, targets in edges.items():
        # Importing a package's submodule runs the package's __init__ first, and a package's
        # __init__ importing its own submodules (`from pkg import sub`) names itself: no cycle.
        edges[module] = {t for t in targets if t != module and not module.startswith(f"{t}.")}
    cycles = _cycles(edges)
    assert cycles == [], " ; ".join(" -> ".join(cycle) for cycle in cycles)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


@pytest.mark.parametrize(
    ("source", "rule_broken"),
    [
        ("from streamguard.local import demo\n", "core imports streamguard.local"),
        ("def f() -> None:\n    from streamguard.worker import app\n", "lazy import"),
        ("if True:\n    import streamguard.stream.windows\n", "nested import"),
    ],
)
def test_the_checker_sees_each_kind_of_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, rule_broken: str
) -> None:
    """The reader finds module-level, nested and function-level imports (else a rule could
    pass only because its violations were invisible)."""
    fake = tmp_path / "streamguard"
    (fake / "core").mkdir(parents=True)
    for name in ("local", "worker", "stream"):
        (fake / name).mkdir()
        (fake / name / "__init__.py").write_text("", encoding="utf-8")
    (fake / "core" / "__init__.py").write_text("", encoding="utf-8")
    (fake / "core" / "bad.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    targets = [_part(target) for target, _ in _imports(fake / "core" / "bad.py")]
    assert targets, rule_broken
    assert all(part not in ALLOWED["core"] for part in targets), rule_broken


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
