"""The layout keeps its promises: the Lambda package ships no local AWS and has no import cycle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_PACKAGE = ROOT / "functions" / "permheal"
LOCAL_ONLY = {"moto", "permheal_local", "cfnlint", "unittest"}
CLI_ONLY = {"permheal.cli"}
"""Left out of the Lambda artifact (functions/Makefile): the CLI imports the local AWS lazily."""


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(LAMBDA_PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in sorted(LAMBDA_PACKAGE.rglob("*.py"))
    }


def _imports(path: Path, *, at_load: bool = False) -> set[str]:
    """Every module (or module.name) a file imports; with `at_load`, only what loading it imports
    (module and class level, TYPE_CHECKING blocks included; not the lazy imports inside functions)."""
    names: set[str] = set()
    nodes: list[ast.AST] = [ast.parse(path.read_text())]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from pkg import x`: the submodule pkg.x when there is one, else pkg (see _graph)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        if not (at_load and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)):
            nodes.extend(ast.iter_child_nodes(node))
    return names


@pytest.mark.parametrize("module", sorted(set(_modules()) - CLI_ONLY))
def test_no_lambda_module_imports_the_local_aws(module: str) -> None:
    """What Lambda runs must not need moto, the local AWS or test tooling (only cli.py is left out)."""
    found = {name for name in _imports(_modules()[module]) if name.split(".")[0] in LOCAL_ONLY}
    assert not found, f"{module} imports {sorted(found)}"


def test_the_local_aws_is_a_package_of_its_own_outside_functions() -> None:
    import permheal_local

    assert Path(permheal_local.__file__).resolve().parent == ROOT / "permheal_local"
    assert not (LAMBDA_PACKAGE / "local").exists()


def test_demo_without_the_local_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI imports the local AWS lazily: without moto, `permheal demo` exits 2 with the install hint."""
    from permheal.cli import main

    for name in [m for m in sys.modules if m.split(".")[0] == "permheal_local"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "moto", None)
    assert main(["demo"]) == 2
    assert "pip install 'permheal[local]'" in capsys.readouterr().err


def _graph() -> dict[str, set[str]]:
    """permheal module → the permheal modules loading it imports (TYPE_CHECKING ones too).

    Imports inside functions are left out: they run later, once every module is loaded, which is
    how a deliberate lazy import breaks a cycle (e.g. the CLI's commands, `permheal check`'s fixes).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        for name in _imports(path, at_load=True):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and name.startswith("permheal."):
                graph[module].add(name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path (first module repeated at the end), or [] when there is none."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_the_lambda_package_has_no_import_cycle() -> None:
    assert _cycle(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(m for m in _modules() if m.startswith("permheal.workflow")))
def test_each_workflow_module_imports_on_its_own(module: str) -> None:
    """Imported first in a fresh interpreter, each step module loads (an import cycle would fail here)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(LAMBDA_PACKAGE.parent), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr


CLI_ARTIFACT_EXCLUDED = {"permheal.cli", "permheal.org_scan", "permheal.adapters.organization"}
"""Modules functions/Makefile leaves out of the Lambda artifact (with permheal.check)."""


def test_no_module_lambda_ships_imports_one_the_artifact_leaves_out() -> None:
    # Given the modules that ship (all but the CLI's own) and those functions/Makefile excludes
    makefile = (ROOT / "functions" / "Makefile").read_text()
    excluded = {*CLI_ARTIFACT_EXCLUDED, "permheal.check"}
    for module in CLI_ARTIFACT_EXCLUDED - {"permheal.cli"}:
        assert f"--exclude=./{module.removeprefix('permheal.').replace('.', '/')}.py" in makefile
    shipped = {
        m: p for m, p in _modules().items() if not any(m == e or m.startswith(e + ".") for e in excluded)
    }
    # When their imports are read (lazy ones too: a handler would fail when it reached one)
    found = {
        module: sorted(i for i in _imports(path) if any(i == e or i.startswith(e + ".") for e in excluded))
        for module, path in shipped.items()
    }
    # Then none imports a left-out module
    assert {m: i for m, i in found.items() if i} == {}
