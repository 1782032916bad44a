"""The layout keeps its rules (docs/ARCHITECTURE.md): layers, no circles, small modules.

Read from the source with ``ast`` (nothing is imported): every import of a stratum module,
at module level or inside a function, is an edge of the module graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "stratum_kernel"

#: subpackage -> the subpackages it may import (besides itself). The package's own
#: ``__init__`` (the version) counts as core.
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "audio": {"core"},
    "analysis": {"core", "audio"},
    "picture": {"core"},
    "motion": {"core", "picture"},
    "film": {"core", "audio"},
    "viz": {"core", "audio", "analysis"},
    "render": {"core", "audio", "analysis", "picture", "motion", "film", "viz"},
    "studio": {"core", "audio", "analysis", "picture", "motion", "film", "viz", "render"},
    "commands": {"core", "audio", "analysis", "picture", "motion", "film", "viz", "render",
                 "studio"},
    "bench": {"core", "audio", "analysis", "picture", "motion", "film", "viz", "render",
              "studio"},
}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("stratum_kernel"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("stratum_kernel"))
    return {r for r in map(_resolve, found) if r}


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "top"


def test_every_subpackage_has_a_layer():
    subpackages = {p.parent.name for p in PKG.glob("*/__init__.py")}
    assert subpackages == set(LAYERS), subpackages ^ set(LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) != "top"))
def test_modules_import_only_their_layer_and_below(module):
    layer = _layer(module)
    allowed = LAYERS[layer] | {layer}
    bad = sorted(t for t in GRAPH[module]
                 if t != "stratum_kernel" and _layer(t) not in allowed)
    assert not bad, f"{module} ({layer}) imports {bad}; {layer} may use {sorted(allowed)}"


def test_no_import_circles():
    """Tarjan's strongly connected components over every import (function-level too)."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, cycles


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small_and_have_no_lazy_attributes(module):
    path = MODULES[module]
    text = path.read_text()
    assert text.count("\n") <= MAX_LINES, f"{path} has {text.count(chr(10))} lines"
    tree = ast.parse(text)
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "__getattr__" not in names, f"{path} defines a module-level __getattr__"


def test_nothing_edits_sys_path():
    offenders = []
    for base in ("stratum_kernel", "training", "scripts"):
        for p in (ROOT / base).rglob("*.py"):
            if "sys.path" in p.read_text():
                offenders.append(str(p.relative_to(ROOT)))
    assert not offenders, offenders
