"""The layout the README promises stays true: every module of src/gancompress imports only from
its own layer or the layers below it, and no two packages import each other in a cycle.

Edges are read from the source with `ast` (nothing is imported): `import` and `from ... import`
statements anywhere in a module (top level and inside functions), `importlib.import_module(
"gancompress....")` calls, and "gancompress.module:Class" / "gancompress.module" strings (lazy
registries). Layers, top to bottom (README "Layout"):

    cli, commands, serve, api (and the package's own __init__ / __main__)
    compress
    training, deploy, incremental
    metrics
    data, models
    config, files, weights, errors, devices, imaging, labelmaps, distributed, sniff

Within a layer, packages may import each other without a cycle, except that models never
import data (a family reads its inputs through imaging / labelmaps, one floor down). The bare
package `gancompress` (its __init__, loaded before any of its modules anyway) is read only for
`__version__` by lower modules and is not an edge.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from helpers import REPO

SRC = REPO / "src" / "gancompress"

LAYERS = [
    {"", "__main__", "cli", "commands", "serve", "api"},
    {"compress"},
    {"training", "deploy", "incremental"},
    {"metrics"},
    {"data", "models"},
    {"config", "files", "weights", "errors", "devices", "imaging", "labelmaps", "distributed",
     "sniff"},
]
# Same-layer edges that are forbidden all the same: (importing package, imported package).
FORBIDDEN = {("models", "data")}
RANK = {unit: len(LAYERS) - i for i, layer in enumerate(LAYERS) for unit in layer}

# Known upward edges (an entry that no longer occurs fails the test, so the list only shrinks).
# Entries are (importing module, imported module).
ALLOWED: set[tuple[str, str]] = set()
# Importing modules allowed to reach one package up, by name (none: keep it so).
ALLOWED_FROM: dict[str, set[str]] = {}

MODULE_STRING = re.compile(r"^gancompress(\.[A-Za-z_][A-Za-z0-9_]*)+(:[A-Za-z_][A-Za-z0-9_]*)?$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit(module: str) -> str:
    """The package (or ground-floor module) a module belongs to: its second name component."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def exists(module: str) -> bool:
    path = SRC.parent / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """Every gancompress module `path` imports (any depth in the file), incl. lazy strings."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from gancompress.x import y` may import the submodule x.y
            for alias in node.names:
                if exists(f"{target}.{alias.name}"):
                    found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docs and MODULE_STRING.match(node.value) and \
                exists(node.value.split(":")[0]):  # not e.g. the file name "gancompress.json"
            found.add(node.value.split(":")[0])
    return {name for name in found if name.startswith("gancompress.")}


def all_edges() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer():
    units = {unit(module_name(p)) for p in SRC.rglob("*.py")}
    assert units - set(RANK) == set(), "add new packages to LAYERS (and README's layout)"


def test_no_upward_import():
    upward, used = [], set()
    for module, targets in all_edges().items():
        for target in targets:
            if RANK[unit(target)] <= RANK[unit(module)] and \
                    (unit(module), unit(target)) not in FORBIDDEN:
                continue
            if (module, target) in ALLOWED:
                used.add((module, target))
            elif unit(target) not in ALLOWED_FROM.get(module, ()):
                upward.append(f"{module} -> {target}")
    assert upward == [], "upward imports (a lower layer importing a higher one):\n" + \
        "\n".join(sorted(upward))
    assert used == ALLOWED, f"allow-list entries that no longer occur: {ALLOWED - used}"


def test_no_mac_rule_is_set_for_a_torch_class_by_a_family():
    """metrics/cost.py's MAC_RULES holds torch's own layer types only, whatever was imported:
    the families declare their rules on their layer classes (`mac_rule`)."""
    import torch.nn as nn

    import gancompress.models  # noqa: F401 - every registered family
    from gancompress.metrics.cost import MAC_RULES

    assert set(MAC_RULES) == {nn.Conv2d, nn.ConvTranspose2d, nn.InstanceNorm2d, nn.LayerNorm,
                              nn.GroupNorm, nn.BatchNorm2d, nn.Linear}
    for path in SRC.rglob("*.py"):
        if module_name(path) != "gancompress.metrics.cost":
            assert "MAC_RULES" not in path.read_text(), f"{path} sets a MAC rule"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, targets in all_edges().items():
        for target in targets:
            if unit(target) != unit(module) and (module, target) not in ALLOWED and \
                    unit(target) not in ALLOWED_FROM.get(module, ()):
                graph.setdefault(unit(module), set()).add(unit(target))
    assert _cycles(graph) == []


@pytest.mark.parametrize("package", ["deploy", "metrics"])
def test_no_cycle_between_modules_of(package):
    """Inside deploy/ (and metrics/) modules import one way only (issue 21 item 5)."""
    prefix = f"gancompress.{package}."
    graph = {m: {t for t in targets if t.startswith(prefix)}
             for m, targets in all_edges().items() if m.startswith(prefix)}
    assert _cycles(graph) == []


def test_the_checker_sees_function_local_and_string_imports(tmp_path, monkeypatch):
    """A guard that can fail: an upward edge hidden in a function, in an importlib call or in a
    "module:Class" string is found."""
    fake = tmp_path / "gancompress"
    for name in ("__init__", "models/__init__", "metrics/__init__", "metrics/cost",
                 "deploy/__init__", "deploy/graph", "training/__init__", "training/loop",
                 "compress/__init__", "compress/tasks"):
        (fake / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
        (fake / f"{name}.py").write_text("")
    (fake / "models" / "x.py").write_text(
        '"""gancompress.compress.tasks:Doc (a docstring, not an edge)"""\n'
        "import importlib\n"
        "def f():\n"
        "    from gancompress.metrics import cost\n"
        "    importlib.import_module('gancompress.deploy.graph')\n"
        "    return 'gancompress.training.loop:Task', 'gancompress.json'\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert imports_of(fake / "models" / "x.py") == {
        "gancompress.metrics", "gancompress.metrics.cost", "gancompress.deploy.graph",
        "gancompress.training.loop"}
    with pytest.raises(AssertionError, match=r"gancompress\.models\.x -> gancompress\.deploy"):
        test_no_upward_import()
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
