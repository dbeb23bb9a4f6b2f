"""Whether this process may start ``spawn`` worker processes (:mod:`kgcl_lib.experiments.executors`' pool).

A spawned worker starts by re-importing the parent's main script.  A script whose work is not
under ``if __name__ == "__main__":`` then runs that work again in every worker, which tries to
start its own pool and dies with multiprocessing's "An attempt has been made to start a new
process before the current process has finished its bootstrapping phase" -- seen by the parent
only as workers that died.  :func:`check_main_guard` says so before any worker starts.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

_MP_MESSAGE = ("An attempt has been made to start a new process before the current process has finished its "
               "bootstrapping phase")


def _is_main_test(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return False
    sides = [node.test.left, *node.test.comparators]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    consts = {s.value for s in sides if isinstance(s, ast.Constant)}
    return isinstance(node.test.ops[0], ast.Eq) and names == {"__name__"} and consts == {"__main__"}


def script_without_guard(main_module=None) -> Path | None:
    """The main script's path when it is a ``.py`` file with top-level code but no
    ``if __name__ == "__main__":`` block; ``None`` otherwise (a notebook kernel, ``python -c``,
    ``python -m`` of a module with the guard, an interactive session, an unreadable file)."""
    main = main_module if main_module is not None else sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    if any(_is_main_test(node) for node in tree.body):
        return None
    calls = [n for n in tree.body if isinstance(n, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.With,
                                                    ast.For, ast.While, ast.If, ast.Try))]
    return Path(path) if calls else None


def check_main_guard(main_module=None) -> None:
    """``RuntimeError`` naming the cause when worker processes started now could not start."""
    path = script_without_guard(main_module)
    if path is not None:
        raise RuntimeError(
            f"spawned workers could not start: {path} runs its work at import time, without "
            f"'if __name__ == \"__main__\":', so every worker process would re-run it (multiprocessing: "
            f"\"{_MP_MESSAGE}\"). Put the script's work under 'if __name__ == \"__main__\":', or use "
            f"executor='local'")
