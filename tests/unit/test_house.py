"""The rules of the house, checked on the source itself: imports run one way, the CLI is
thin, and no ``assert`` guards state (issue 17, docs/architecture.md#layout)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "shipml"
# The runtime side (what a serving worker loads) never reaches the build-time side.
LOWER = ("shipml.store", "shipml.scoring", "shipml.serving")
UPPER = (
    "shipml.train",
    "shipml.saving",
    "shipml.publish",
    "shipml.image",
    "shipml.deploy",
    "shipml.cli",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str:
    """The module of ours that ``import name`` loads (``a.b.C`` → ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "shipml" and _owner(target) not in ("", module):
                yield _owner(target), node.lineno


GRAPH = {module: sorted(set(_imports(module, path))) for module, path in MODULES.items()}


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_import_graph_has_no_cycle() -> None:
    edges = {module: {target for target, _ in targets} for module, targets in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_runtime_side_never_imports_the_build_side() -> None:
    upward = [
        f"{module} -> {target} ({MODULES[module].relative_to(SRC)}:{line})"
        for module, targets in GRAPH.items()
        if _within(module, LOWER)
        for target, line in targets
        if _within(target, UPPER)
    ]
    assert upward == []


def test_the_graph_sees_the_imports() -> None:
    """The checks above are only as good as the graph: it must see known arrows."""
    assert "shipml.store.store" in {target for target, _ in GRAPH["shipml.store"]}
    assert "shipml.publish" in {target for target, _ in GRAPH["shipml.train"]}
    assert "shipml.cli.app" in {target for target, _ in GRAPH["shipml.cli"]}


def _loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "code",
    [
        "import shipml.serving",
        "import shipml.serving.worker, shipml.serving.server, shipml.serving.app",
    ],
)
def test_serving_loads_neither_the_cli_nor_the_training_path(code: str) -> None:
    loaded = _loaded_by(code)
    assert "shipml.serving" in loaded
    heavy = {"typer", "joblib", "shipml.saving", "shipml.train", "shipml.cli"}
    assert sorted(heavy & loaded) == []


def test_import_shipml_stays_light_and_save_model_is_there_on_use() -> None:
    loaded = _loaded_by("import shipml")
    assert sorted({"numpy", "joblib", "shipml.saving"} & loaded) == []
    assert "shipml.saving" in _loaded_by("import shipml; shipml.save_model")


def _commands() -> Iterator[tuple[str, ast.FunctionDef]]:
    """Every function registered as a command (``@app.command(...)``) in the CLI."""
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and d.func.attr == "command"
                for d in node.decorator_list
            ):
                yield f"{path.name}:{node.name}", node


def _body_lines(function: ast.FunctionDef) -> int:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring is the command's --help, not its work
    return 0 if not body else (body[-1].end_lineno or 0) - body[0].lineno + 1


def test_every_command_body_is_at_most_15_lines() -> None:
    commands = dict(_commands())
    assert len(commands) >= 20  # the check sees the commands (init … monitor dashboard)
    long = {name: n for name, f in commands.items() if (n := _body_lines(f)) > 15}
    assert long == {}


def test_no_assert_guards_state_in_the_source() -> None:
    """``python -O`` drops asserts: state is made impossible to half-set (serving's
    ``Loaded``, deploy's resolved options) or checked with an error that says what to do."""
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Assert)
    ]
    assert found == []


def test_the_cli_loads_its_work_on_use() -> None:
    """``shipml --help`` loads typer and rich; the packages that do the work load when a
    command runs (the store alone would bring fsspec; deploy, docker; training, numpy)."""
    loaded = _loaded_by("import shipml.cli")
    ours = {m for m in loaded if m.split(".")[0] == "shipml"}
    assert {m for m in ours if not m.startswith("shipml.cli")} == {"shipml", "shipml.errors"}
    assert sorted({"fsspec", "docker", "numpy", "yaml"} & loaded) == []
