"""Print the structure of ``kgcl_lib``: lines per module, its longest function, and the
module-level names that more than one module defines.

    python scripts/structure_report.py [PACKAGE_DIR]      # default: kgcl_lib next to this script

Used for the before/after table of issue 13 (run it on two checkouts and compare).  Counts:
``lines`` = physical lines of the file; ``longest`` = the function or method (nested ones
included) with the most lines, from its ``def`` line to its last line;
``names defined more than once`` = top-level ``def`` / ``class`` / assigned names that two
or more modules bind (private ``_names``, ``__all__`` and imports excluded).
"""

from __future__ import annotations

import ast
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
