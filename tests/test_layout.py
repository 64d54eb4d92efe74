"""The package's shape: steps of the record's journey import only from earlier steps, nothing
imports in a circle, and no module or function grows past what one reading can hold."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "batchrun"

# In journey order; a module may import from its own layer and the layers before it.
LAYERS = [
    {"batchrun", "batchrun.errors", "batchrun.records", "batchrun.secret", "batchrun.clock"},
    {"batchrun.input"},
    {"batchrun.limit"},
    {"batchrun.account"},
    {"batchrun.route"},
    {"batchrun.send"},
    {"batchrun.store"},
    {"batchrun.batch"},
    {"batchrun.results"},
    {"batchrun.show"},
    {"batchrun.sim"},
    {"batchrun.option_values", "batchrun.config"},
    {"batchrun.job"},  # the job, live (job/) and through the Batch API (job/batch_api/)
    {"batchrun.commands"},  # the backends of the commands other than `process`
    {"batchrun.cli", "batchrun.__main__"},
]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
MAX_FOLDER_MODULES = 12  # __init__.py included: past about 12, a folder is usually two rooms


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def layer_of(module: str) -> int:
    for i, members in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members if m != "batchrun"):
            return i
        if module in members:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in journey order")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("batchrun"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("batchrun"))
    return found


def test_no_step_imports_from_a_later_step() -> None:
    wrong = []
    for name, path in modules().items():
        for imported in imports(path):
            if layer_of(imported) > layer_of(name):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_no_import_cycles() -> None:
    mods = modules()
    graph = {name: {i for i in imports(path) if i in mods and i != name} for name, path in mods.items()}
    # a package's __init__ importing its own submodules (the CLI registering commands) is not a cycle
    for name in graph:
        graph[name] = {i for i in graph[name] if not i.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append([*stack[stack.index(m):], m])
            elif m not in state:
                visit(m, [*stack, m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert cycles == []


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES:
                    too_big.append(f"function {name}.{node.name}: {n} lines")
    assert too_big == []


def test_no_folder_holds_more_than_twelve_modules() -> None:
    crowded = []
    for folder in sorted({p.parent for p in PACKAGE.rglob("*.py")}):
        count = len(list(folder.glob("*.py")))
        if count > MAX_FOLDER_MODULES:
            crowded.append(f"{folder.relative_to(PACKAGE.parent)}: {count} modules")
    assert crowded == []
