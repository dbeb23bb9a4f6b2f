"""Print the structure of ``kgcl_lib``: lines per module, its longest function, the
module-level names that more than one module defines, and the layout's counts (rooms, arrows,
upward arrows and cycles from ``tests/integration/test_layout.py``, function-level project imports, shims).

    python scripts/structure_report.py [PACKAGE_DIR]      # default: kgcl_lib next to this script

Used for the before/after tables of issues 13 and 27 (run it on two checkouts and compare;
the layout counts use the ``tests/integration/test_layout.py`` next to PACKAGE_DIR).  Counts:
``lines`` = physical lines of the file; ``longest`` = the function or method (nested ones
included) with the most lines, from its ``def`` line to its last line;
``names defined more than once`` = top-level ``def`` / ``class`` / assigned names that two
or more modules bind (private ``_names``, ``__all__`` and imports excluded).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path


def module_facts(path: Path) -> tuple[int, str, int, set[str]]:
    """``(lines, longest function name, its lines, top-level public names)`` of one file."""
    text = path.read_text()
    tree = ast.parse(text, filename=str(path))
    longest, longest_n = "-", 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > longest_n:
                longest, longest_n = node.name, n
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
    names = {n for n in names if not n.startswith("_")}
    return len(text.splitlines()), longest, longest_n, names


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "kgcl_lib"
    if not root.is_dir():
        print(f"structure_report: {root} is not a directory", file=sys.stderr)
        return 2
    where: dict[str, list[str]] = defaultdict(list)
    rows = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        lines, fn, fn_n, names = module_facts(path)
        rows.append((rel, lines, fn, fn_n))
        for n in names:
            where[n].append(rel)
    print("| module | lines | longest function (lines) |")
    print("|---|---:|---|")
    for rel, lines, fn, fn_n in rows:
        print(f"| `{rel}` | {lines} | `{fn}` ({fn_n}) |")
    print(f"| total | {sum(r[1] for r in rows)} | |")
    dup = {n: ms for n, ms in sorted(where.items()) if len(ms) > 1}
    print(f"\nnames defined in more than one module: {len(dup)}")
    for n, ms in dup.items():
        print(f"- `{n}`: {', '.join(ms)}")
    layout_report(root)
    return 0


def layout_report(root: Path) -> None:
    """Rooms, arrows, upward arrows, cycles (``tests/integration/test_layout.py`` of the same checkout),
    private helpers defined twice, function-level project imports and re-export shims."""
    tests = root.parent / "tests"
    # tests/test_layout.py in checkouts from before the tests mirrored the package (issue 27)
    test = next((t for t in (tests / "integration" / "test_layout.py", tests / "test_layout.py") if t.is_file()), None)
    if test is None:
        return
    spec = importlib.util.spec_from_file_location("_layout", test)
    lay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lay)
    graph = lay.import_graph(root)
    room = lambda m: m.split(".")[0]  # noqa: E731
    rooms = defaultdict(set)
    for a, bs in graph.items():
        for b in bs:
            if a and room(a) != room(b):
                rooms[room(a)].add(room(b))
    n_rooms = len({room(m) for m in graph if m})
    print(f"\nrooms (top-level packages and modules): {n_rooms}; floors: {len(lay.FLOORS)}")
    print(f"arrows: {sum(map(len, graph.values()))} between modules, {sum(map(len, rooms.values()))} between rooms")
    print(f"upward arrows: {len(lay.upward_imports(graph))}; cycles: {lay.cycles(graph)} (modules), "
          f"{lay.cycles(dict(rooms))} (rooms)")
    private, fn_imports, noqa, facade_private = defaultdict(list), 0, 0, 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_") and not node.name.startswith("__"):
                private[node.name].append(path.relative_to(root).as_posix())
            if path.name == "__init__.py" and isinstance(node, ast.ImportFrom):
                facade_private += sum(a.name.startswith("_") and not a.name.startswith("__") for a in node.names)
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                fn_imports += sum(isinstance(n, ast.ImportFrom) and (n.level > 0 or (n.module or "").startswith(root.name))
                                  for n in ast.walk(fn))
        if path.name != "__init__.py":
            noqa += len(re.findall(r"noqa: F401", text))
    twice = {n: ms for n, ms in sorted(private.items()) if len(ms) > 1}
    print(f"private helpers defined in more than one module: {len(twice)} {sorted(twice)}")
    print(f"function-level project imports: {fn_imports}")
    print(f"'noqa: F401' lines outside package __init__s: {noqa}; private names exported by __init__s: {facade_private}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
