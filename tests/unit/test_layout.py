"""The package's shape holds: small modules, no import cycles, layers that keep to themselves."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "docproc"
MAX_LINES = 410
# Layers that must stay free of the frameworks: what a module may import from outside the
# standard library is named by where it lives.
PURE = ("docproc.pipeline", "docproc.model", "docproc.errors", "docproc.report")
FRAMEWORKS = {"celery", "kombu", "flask", "werkzeug", "redis", "watchdog", "rich"}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(name: str, path: Path, *, top_level_only: bool) -> set[str]:
    """Return the modules `name` imports (at module level only, if asked), TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            if top_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list) and children and isinstance(children[0], ast.AST):
                    visit([c for c in children if isinstance(c, ast.stmt)]
                          + [s for h in children if isinstance(h, ast.ExceptHandler)
                             for s in h.body])

    visit(tree.body)
    return found


MODULES = dict(_modules())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_size_a_reader_takes_in(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"


def test_module_level_imports_make_no_cycle() -> None:
    graph = {name: {m for m in _imports(name, path, top_level_only=True) if m in MODULES}
             for name, path in MODULES.items()}
    for name in graph:  # a package imported through one of its modules is no cycle
        graph[name].discard(name)
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> None:
        if name in trail:
            pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(name):], name]))
        if name in done:
            return
        for child in sorted(graph[name]):
            if not (name.startswith(child + ".")):  # a module importing its own package
                walk(child, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        walk(name, [])


def test_only_the_cli_prints() -> None:
    printing = []
    for name, path in MODULES.items():
        if name.startswith("docproc.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "print"):
                printing.append(f"{name}:{node.lineno}")
    assert printing == []


@pytest.mark.parametrize("name", [n for n in sorted(MODULES) if n.startswith(PURE)])
def test_pure_layers_know_nothing_of_frameworks_or_the_daemon(name: str) -> None:
    imported = _imports(name, MODULES[name], top_level_only=False)
    frameworks = {m for m in imported if m.split(".")[0] in FRAMEWORKS}
    daemon = {m for m in imported if m.startswith("docproc.") and m in MODULES
              and not m.startswith(PURE) and m != "docproc.units"}
    assert not frameworks and not daemon, f"{name} imports {sorted(frameworks | daemon)}"
