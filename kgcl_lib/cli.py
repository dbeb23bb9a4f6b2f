"""One error style for every ``python -m kgcl_lib.*`` command.

* Argument errors: one line ``PROG: error: --option VALUE: why (allowed: ...)`` on stderr,
  exit status 2 (:meth:`CliParser.error`, :func:`arg_error`).
* Data and file errors (:class:`~kgcl_lib.data.DatasetError`, ``ValueError``, ``OSError``):
  one line ``PROG: error: ...`` on stderr, exit status 1; a permission problem names the path
  and what to do.  ``--debug`` shows the full traceback instead.
* Every option's help states its default (:class:`CliParser` appends ``(default: X)`` when the
  help text does not mention one).
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback
import warnings
from typing import Callable, Sequence

#: Exit status of argument errors (argparse's convention) and of data/file errors.
EXIT_USAGE = 2
EXIT_ERROR = 1


class ArgumentError(Exception):
    """A bad option value found after parsing; ``str(e)`` is the one-line message."""


class CliParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line errors and defaults in every help text.

    Adds ``--debug`` (full tracebacks) to every parser.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the full traceback of an error (default: off)")

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.help and action.nargs != 0 and action.option_strings and not action.required:
            if "default" not in action.help.lower():
                action.help = f"{action.help} (default: {_show(action.default)})"
        return action

    def error(self, message: str):  # one line, no usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def choices_text(values: Sequence) -> str:
    return ", ".join(map(str, values))


def arg_error(option: str, value, why: str) -> ArgumentError:
    """The :class:`ArgumentError` for ``option`` set to ``value``: ``--opt VALUE: why``."""
    return ArgumentError(f"{option} {value}: {why}")


def wants_debug(argv: Sequence[str] | None) -> bool:
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def describe_os_error(e: OSError) -> str:
    """One line for a file-system error: what failed, on which path, and what to do."""
    path = e.filename or ""
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {path}: {e.strerror}. Set KGCL_CACHE_DIR (caches) or KGCL_RUNS_DIR / --out-dir "
                f"(results) to a writable folder, or pass --no-cache where the command has it")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on device writing {path}; free space, or set KGCL_CACHE_DIR (caches) / "
                f"KGCL_RUNS_DIR (results) to another disk")
    return f"{e.strerror or e} ({path})" if path else str(e)


def run_main(body: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *, prog: str) -> int:
    """Run ``body(argv)`` and turn errors into one-line messages and exit codes.

    ``SystemExit`` (argparse) passes its code through; :class:`ArgumentError` -> 2;
    ``ValueError`` (incl. ``DatasetError``), ``OSError``, ``RuntimeError`` -> 1;
    ``KeyboardInterrupt`` -> 130.  With ``--debug`` in ``argv`` the traceback is printed too.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = wants_debug(argv)
    with warnings.catch_warnings():
        if not debug:  # warnings as one line each, without the source line that raised them
            warnings.showwarning = lambda message, category, *a, **k: print(
                f"{prog}: warning: {message}", file=sys.stderr)
        return _run(body, argv, prog, debug)


def _run(body, argv, prog, debug) -> int:
    try:
        return int(body(argv) or 0)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else _fail(prog, str(e.code), EXIT_ERROR))
    except ArgumentError as e:
        return _fail(prog, f"{e} (see --help)", EXIT_USAGE, debug)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        return _fail(prog, describe_os_error(e), EXIT_ERROR, debug)
    except (ValueError, RuntimeError, ImportError) as e:
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        return _fail(prog, message or type(e).__name__, EXIT_ERROR, debug)


def _fail(prog: str, message: str, code: int, debug: bool = False) -> int:
    if debug:
        traceback.print_exc()
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def check_existing_dir(option: str, value) -> None:
    """:class:`ArgumentError` naming ``option`` unless ``value`` (when given) is an existing folder."""
    import os

    if value is not None and not os.path.isdir(value):
        why = "is a file, not a folder" if os.path.exists(value) else "no such folder"
        raise arg_error(option, value, why)


def check_range(option: str, value, *, low=None, high=None, strict: bool = False, finite: bool = True,
                allowed: str | None = None) -> None:
    """:class:`ArgumentError` ``OPTION VALUE: out of range (allowed: ...)`` unless ``low <= value <= high``
    (either bound optional; ``strict``: ``low < value``) and, for ``finite``, not NaN/inf."""
    import math

    ok = not (finite and isinstance(value, float) and not math.isfinite(value))
    ok = ok and (low is None or value > low or (not strict and value == low)) and (high is None or value <= high)
    if not ok:
        if allowed is None:
            allowed = " and ".join(x for x in (f">= {low}" if low is not None else "",
                                                f"<= {high}" if high is not None else "") if x) or "a finite number"
        raise arg_error(option, value, f"out of range (allowed: {allowed})")


def json_safe(obj):
    """``obj`` with every non-finite float (NaN, ±inf) replaced by ``None``: strict JSON (``null``)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def json_text(obj, **kwargs) -> str:
    """Strict JSON of ``obj`` (NaN/inf as ``null``; never the non-standard ``NaN`` token)."""
    import json

    return json.dumps(json_safe(obj), allow_nan=False, default=str, **kwargs)
