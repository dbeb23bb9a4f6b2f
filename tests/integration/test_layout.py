"""The import layout of ``kgcl_lib`` (docs/DESIGN.md, "Floors"): no module imports one on a
later floor, and no two modules import each other, directly or through others.

The imports are read from the source with :mod:`ast` (every ``import`` statement, also those
inside functions; those under ``if TYPE_CHECKING:`` are skipped, they never run), so a lazy
import cannot hide an upward dependency.  A module that no floor names fails the test: place it
in :data:`FLOORS` and in the design card's table together.
"""

from __future__ import annotations

import ast
from pathlib import Path

#: tests/integration/test_layout.py -> the repository root (no import of tests.helpers: scripts/structure_report.py
#: loads this file on its own)
PACKAGE = Path(__file__).resolve().parents[2] / "kgcl_lib"

#: The floors of docs/DESIGN.md, top (imported by everything below) to bottom.  A module belongs
#: to the floor of the longest entry that names it or a package above it; it may import modules
#: on its own floor or an earlier one.
FLOORS: list[tuple[str, ...]] = [
    ("constants", "storage", "cli", "metrics", "seeds", "locks", "progress", "mainguard"),  # leaves: no project imports at run time
    ("data",),
    ("text",),
    ("pairs",),
    ("model",),
    ("train.config",),
    ("train.io",),
    ("train.loop",),
    ("train",),  # the package's __init__: re-exports config, io, loop
    ("train.__main__",),  # python -m kgcl_lib.train: the CLI on top of the loop
    ("experiments.spec",),
    ("experiments.inputs",),
    ("experiments.evaluation",),
    ("experiments.execute",),
    ("experiments.store",),
    ("experiments.executors",),
    ("experiments.grid",),
    ("experiments",),  # the package's __init__: re-exports every step above
    ("tune",),
    ("report",),
    ("findings", "claims", "inspector"),
    ("runner",),  # runner.notebooks, its facade and python -m kgcl_lib.runner
]


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``kgcl_lib/data/registry.py`` -> ``"data.registry"``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """Project modules (names as :func:`module_name`) that ``path`` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path, root)
    package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = set()
    top = root.name
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                if node.level - 1 > len(package):
                    raise AssertionError(f"{path}:{node.lineno}: relative import above {top}")
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == top or node.module.startswith(top + ".")):
                target = node.module[len(top) + 1 :]
            else:
                continue
            for alias in node.names:  # ``from .data import split``: the submodule when there is one
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(top + "."):
                    found.add(alias.name[len(top) + 1 :])
    return {m for m in found if m in modules and m != here}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over every ``.py`` file under ``root``."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(paths)
    return {m: imports_of(p, modules, root) for m, p in paths.items()}


def floor_of(module: str, floors=FLOORS) -> int | None:
    """Index of the floor whose longest entry is ``module`` or a package above it; ``None`` if none."""
    best, best_len = None, -1
    for i, names in enumerate(floors):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    if module == "":  # kgcl_lib/__init__.py: the package itself, above nothing
        return 0
    return best


def upward_imports(graph: dict[str, set[str]], floors=FLOORS) -> list[str]:
    """``"a (floor i) imports b (floor j > i)"`` for every import that runs back up."""
    bad = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            fa, fb = floor_of(a, floors), floor_of(b, floors)
            if fa is not None and fb is not None and fb > fa and not b.startswith(a + "."):
                bad.append(f"{a or 'kgcl_lib'} (floor {fa}) imports {b} (floor {fb})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted.

    A package's ``__init__`` re-exporting its own submodules is not a cycle: imports of a module
    from inside the package it belongs to are left out (``data.registry`` -> ``data``).
    """
    edges = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in graph.items()}
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def function_level_imports(root: Path = PACKAGE) -> list[str]:
    """``"module:line"`` of every project import inside a function or class body (outside
    ``if TYPE_CHECKING:``): such an import hides a module's real dependencies from its header."""
    out = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        typing_only = {id(c) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
                       for stmt in n.body for c in ast.walk(stmt)}
        for scope in ast.walk(tree):
            if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(scope):
                if id(node) in typing_only:
                    continue
                project = (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == root.name)) \
                    or (isinstance(node, ast.Import) and any(a.name.split(".")[0] == root.name for a in node.names))
                if project:
                    out.append(f"{module_name(path, root) or root.name}:{node.lineno}")
    return sorted(set(out))


# ---------------------------------------------------------------------------- the checker itself
def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "pkg"


def test_checker_finds_an_upward_import_and_a_cycle_by_hand(tmp_path):
    """Hand-built package: ``low`` imports ``high`` lazily (upward), ``a``/``b`` import each other
    (a cycle), ``c`` imports ``a`` only under TYPE_CHECKING (ignored)."""
    root = _write(tmp_path, {
        "__init__.py": "",
        "low.py": "def f():\n    from .high import g\n",
        "high.py": "from . import low\n",
        "a.py": "from .b import x\n",
        "b.py": "import pkg.a\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n",
        "sub/__init__.py": "from .leaf import z\n",
        "sub/leaf.py": "from . import other\n",
        "sub/other.py": "",
    })
    graph = import_graph(root)
    assert graph["low"] == {"high"} and graph["high"] == {"low"} and graph["c"] == set()
    assert graph["a"] == {"b"} and graph["b"] == {"a"} and graph["sub.leaf"] == {"sub.other"}
    floors = [("low",), ("high", "a", "b", "c", "sub")]
    assert upward_imports(graph, floors) == ["low (floor 0) imports high (floor 1)"]
    assert cycles(graph) == [["a", "b"], ["high", "low"]]


def test_function_level_import_checker_by_hand(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "",
        "top.py": "import json\nfrom . import low\n",
        "lazy.py": "def f():\n    import json\n    from .top import x\n\nclass C:\n    import pkg.low\n",
        "typed.py": "from typing import TYPE_CHECKING\ndef g():\n    if TYPE_CHECKING:\n        from .low import y\n",
        "low.py": "",
    })
    assert function_level_imports(root) == ["lazy:3", "lazy:6"]


def test_no_function_level_project_imports():
    """Every module states its project dependencies in its header (issue 27; torch / transformers
    / ray and other third-party packages may still be imported where they are needed)."""
    found = function_level_imports()
    assert not found, f"project imports inside functions or classes (move them to the module header): {found}"


def test_every_module_has_a_floor():
    missing = [m for m in import_graph() if floor_of(m) is None]
    assert not missing, f"modules on no floor of FLOORS / docs/DESIGN.md: {missing}"


def test_no_upward_imports():
    bad = upward_imports(import_graph())
    assert not bad, "imports that run back up a floor (docs/DESIGN.md):\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, f"import cycles: {found}"


def test_floors_match_the_design_card():
    """Every floor entry of this test names a module or package the design card's table lists."""
    design = (PACKAGE.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    absent = [n for names in FLOORS for n in names if f"kgcl_lib/{n.replace('.', '/')}" not in design]
    assert not absent, f"in FLOORS but not in docs/DESIGN.md: {absent}"
