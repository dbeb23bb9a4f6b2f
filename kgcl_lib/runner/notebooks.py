"""Execute the notebook collection headlessly with papermill (what ``./run_all.sh`` runs).

    python -m kgcl_lib.runner [--profile NAME] [--only 03,04] [--force]
                              [--runs-dir DIR] [--figures-dir DIR]
                              [--executor local|processes|ray] [--ray-address auto|HOST:PORT]

* Notebooks are discovered as ``notebooks/[0-9][0-9]_*.ipynb`` and run in name order, each with
  its working directory set to ``notebooks/`` and the ``python3`` kernel.
* Executed copies go to ``<runs>/<profile>/notebooks/<name>.ipynb`` (``<runs>`` is
  ``$KGCL_RUNS_DIR`` or ``runs/`` in the checkout, git-ignored), tables and figures to
  ``figures/<profile>/``; each notebook writes its headline numbers to ``<name>.json`` next to
  its executed copy.
* Parameters, later layers win:
    1. the literals in the notebook's ``parameters`` cell (the defaults);
    2. the global keys of ``params/<profile>.yaml``;
    3. that file's ``notebooks: {<name or its 2-digit prefix>: {...}}`` section;
    4. what the runner injects: ``profile``, ``results_dir``, ``figures_dir``,
       ``headlines_path``, ``force``; and ``executor`` / ``ray_address`` when given on the
       command line (``--executor processes``: notebooks 04, 09 and 10 run their grids in a pool
       of worker processes on this machine; ``--executor ray``: grids and LLM generation as Ray
       tasks; :mod:`kgcl_lib.experiments.executors`).
  Only keys that a notebook's ``parameters`` cell declares are passed to it; a key that no
  notebook declares is an error (a typo would otherwise be silently ignored).
* ``--force`` deletes the executed copies and headline files of the selected notebooks and
  passes ``force=True`` so their cached results are recomputed.
* The first failing notebook stops the run: its name and failing cell are printed and the
  exit status is 1.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..storage import HEADLESS_ENV, REPO_ROOT, results_root, write_json

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
#: Parameters the runner sets itself; a profile may not override them.
INJECTED = ("profile", "results_dir", "figures_dir", "headlines_path", "force")


@dataclass(frozen=True)
class Profile:
    """A parsed ``params/<name>.yaml``: ``globals`` for every notebook, ``per_notebook`` by key."""

    name: str
    path: Path
    globals: dict
    per_notebook: dict
    description: str = ""


def load_profile(name: str, params_dir: Path | None = None) -> Profile:
    """Read ``params/<name>.yaml``; raise ``ValueError`` naming the file for a bad layout."""
    params_dir = Path(params_dir or REPO_ROOT / "params")
    path = params_dir / f"{name}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise ValueError(f"no profile {name!r}: {path} does not exist (profiles: {', '.join(have)})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    per = data.pop("notebooks", None) or {}
    desc = data.pop("description", "") or ""
    if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
        raise ValueError(f"{path}: 'notebooks' must map notebook names to mappings of parameters")
    bad = [k for k in INJECTED if k in data or any(k in v for v in per.values())]
    if bad:
        raise ValueError(f"{path}: parameters {bad} are set by the runner, not by a profile")
    return Profile(name=name, path=path, globals=data, per_notebook={str(k): v for k, v in per.items()},
                   description=str(desc))


def discover(notebooks_dir: Path | None = None) -> list[Path]:
    """``notebooks/[0-9][0-9]_*.ipynb`` in name order (no hand-kept list)."""
    notebooks_dir = Path(notebooks_dir or REPO_ROOT / "notebooks")
    found = sorted(notebooks_dir.glob(NOTEBOOK_GLOB))
    if not found:
        raise ValueError(f"no notebooks matching {NOTEBOOK_GLOB} in {notebooks_dir}")
    return found


def select(notebooks: list[Path], only: str | None) -> list[Path]:
    """Keep the notebooks whose 2-digit prefix (or full stem) is listed in ``only`` ("03,04")."""
    if not only:
        return notebooks
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = [nb for nb in notebooks if any(nb.stem == w or nb.stem[:2] == w.zfill(2) for w in wanted)]
    unknown = [w for w in wanted if not any(nb.stem == w or nb.stem[:2] == w.zfill(2) for nb in notebooks)]
    if unknown:
        raise ValueError(f"--only {only!r}: no notebook for {unknown}; have {[nb.stem for nb in notebooks]}")
    return chosen


def declared_parameters(nb: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (papermill's own parser)."""
    import papermill

    return set(papermill.inspect_notebook(str(nb)).keys())


def notebook_parameters(nb: Path, profile: Profile, injected: dict, declared: set[str] | None = None) -> dict:
    """Layers 2–4 of the module docstring, filtered to what ``nb`` declares."""
    declared = declared_parameters(nb) if declared is None else declared
    params = dict(profile.globals)
    for key in (nb.stem[:2], nb.stem):  # prefix section first, then the full name wins
        params.update(profile.per_notebook.get(key, {}))
    params.update(injected)
    return {k: v for k, v in params.items() if k in declared}


def check_profile_keys(profile: Profile, notebooks: list[Path], declared: dict[Path, set[str]]) -> None:
    """Fail on a profile key that no notebook declares, or a section naming no notebook."""
    every = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(profile.globals) - every)
    for key, section in profile.per_notebook.items():
        targets = [nb for nb in notebooks if key in (nb.stem, nb.stem[:2])]
        if not targets:
            raise ValueError(f"{profile.path}: 'notebooks' section {key!r} names no notebook")
        unknown += [f"{key}.{k}" for k in sorted(set(section) - set().union(*(declared[t] for t in targets)))]
    if unknown:
        raise ValueError(f"{profile.path}: parameters declared by no notebook: {unknown}")


#: Kernels talk to the runner over IPC sockets: the default TCP transport makes every kernel print an
#: "running over TCP without encryption" warning, and local runs need no network transport.
try:
    from traitlets.config import Config as _Config

    KERNEL_CONFIG = _Config({"KernelManager": {"transport": "ipc"}})
except ImportError:  # traitlets comes with jupyter; without it papermill cannot run anyway
    KERNEL_CONFIG = None

_WARNING_MARK = re.compile(r"warning|fallback|skipped|not available|unavailable", re.IGNORECASE)
_WARNING_PREFIX = re.compile(r"^\S*\.py:\d+: ")  # "path/file.py:123: " of warnings.warn
_WARNING_CLASS = re.compile(r"^(?:\w+Warning|WARNING|Warning):\s*")  # the same message via warnings.warn and logging


def new_warnings(executed: Path, seen: set[str], limit: int = 240) -> list[str]:
    """Warning lines in ``executed``'s stderr outputs that ``seen`` does not hold yet (added to it).

    Notebooks run in fresh kernels, so a library warning (an offline model fallback, a skipped
    cross-encoder) appears in every notebook that touches the model; the runner says each once.
    Lines are stripped of the ``file.py:N:`` prefix and of the warning class (a library that both
    warns and logs a message says it once), and cut to ``limit`` characters.
    """
    try:
        nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stderr":
                continue
            text = output.get("text", "")
            for raw in (text if isinstance(text, str) else "".join(text)).splitlines():
                if raw.startswith((" ", "\t")) or "\r" in raw:  # the source line warnings.warn prints; progress bars
                    continue
                line = _WARNING_CLASS.sub("", _WARNING_PREFIX.sub("", raw.strip()))
                if not line or not _WARNING_MARK.search(line):
                    continue
                line = line if len(line) <= limit else line[: limit - 1] + "…"
                if line not in seen:
                    seen.add(line)
                    found.append(line)
    return found


def run(profile_name: str = "default", *, only: str | None = None, force: bool = False,
        runs_dir: str | os.PathLike | None = None, figures_dir: str | os.PathLike | None = None,
        notebooks_dir: str | os.PathLike | None = None, params_dir: str | os.PathLike | None = None,
        cell_timeout: float | None = None, retries: int = 1, executor: str | None = None,
        ray_address: str | None = None, out=sys.stdout) -> int:
    """Execute the selected notebooks in order; return 0, or 1 at the first failure.

    ``cell_timeout`` (seconds; default ``$KGCL_CELL_TIMEOUT`` or 7200) bounds every cell, so a
    stalled kernel connection fails instead of hanging; a notebook that times out or whose
    kernel dies is re-executed up to ``retries`` times (notebooks are idempotent: finished work
    is read back from the results folder). ``executor`` / ``ray_address`` override the
    profile's keys of the same names.
    """
    if cell_timeout is None:
        cell_timeout = float(os.environ.get("KGCL_CELL_TIMEOUT") or 7200)
    # Kernels inherit the environment: the cold-start inspector then renders statically, and the
    # notebooks import the kgcl_lib of this checkout (not another one an editable install points at).
    previous = {key: os.environ.get(key) for key in (HEADLESS_ENV, "PYTHONPATH")}
    os.environ[HEADLESS_ENV] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), previous["PYTHONPATH"]) if p)
    try:
        return _run(profile_name, only, force, runs_dir, figures_dir, notebooks_dir, params_dir,
                    cell_timeout, retries, out, executor, ray_address)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(profile_name, only, force, runs_dir, figures_dir, notebooks_dir, params_dir, cell_timeout, retries,
         out, executor=None, ray_address=None) -> int:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    profile = load_profile(profile_name, Path(params_dir) if params_dir else None)
    all_nbs = discover(Path(notebooks_dir) if notebooks_dir else None)
    nbs = select(all_nbs, only)
    declared = {nb: declared_parameters(nb) for nb in all_nbs}
    check_profile_keys(profile, all_nbs, declared)

    results = results_root(profile_name, runs_dir)
    figures = Path(figures_dir or REPO_ROOT / "figures" / profile_name).resolve()
    executed = results / "notebooks"
    executed.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    print(f"[kgcl] profile {profile_name!r} ({profile.path.name}); results -> {results}; figures -> {figures}",
          file=out, flush=True)

    cli = {k: v for k, v in (("executor", executor), ("ray_address", ray_address)) if v is not None}
    if cli.get("executor") not in (None, "local", "processes", "ray"):
        raise ValueError(f"--executor must be 'local', 'processes' or 'ray', got {executor!r}")
    if cli:
        print(f"[kgcl] command-line overrides: {cli}", file=out, flush=True)
    if cli.get("executor", profile.globals.get("executor")) == "ray":
        try:  # fail before the first notebook, not in the middle of notebook 04
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("executor 'ray' needs Ray, an optional extra: pip install '.[ray]'") from None

    timings: dict[str, float] = {}
    seen_warnings: set[str] = set()
    width = max((len(nb.stem) for nb in nbs), default=0)
    t_all = time.perf_counter()
    for nb in nbs:
        target = executed / nb.name
        headlines = target.with_suffix(".json")
        if force:
            target.unlink(missing_ok=True)
            headlines.unlink(missing_ok=True)
        params = notebook_parameters(nb, profile, {
            "profile": profile_name, "results_dir": str(results), "figures_dir": str(figures),
            "headlines_path": str(headlines), "force": bool(force), **cli}, declared[nb])
        # one line per notebook: the name now, its time when it is done
        print(f"[kgcl] {nb.stem:<{width}} ", end="", file=out, flush=True)
        t0 = time.perf_counter()
        for attempt in range(retries + 1):
            try:
                papermill.execute_notebook(str(nb), str(target), parameters=params, kernel_name="python3",
                                           cwd=str(nb.parent), progress_bar=False, log_output=False,
                                           execution_timeout=cell_timeout, config=KERNEL_CONFIG)
                break
            except PapermillExecutionError as exc:
                dt = time.perf_counter() - t0
                print(f"FAILED after {dt:.1f} s", file=out, flush=True)
                print(f"[kgcl] FAILED {nb.name} after {dt:.1f} s at cell {exc.cell_index} of the executed copy "
                      f"(In [{exc.exec_count}]): {exc.ename}: {exc.evalue}\n"
                      f"[kgcl] executed copy with the traceback: {target}", file=out, flush=True)
                return 1
            except Exception as exc:  # cell timeout, kernel died, bad notebook JSON, ...
                transient = isinstance(exc, TimeoutError) or type(exc).__name__ in ("CellTimeoutError", "DeadKernelError")
                if transient and attempt < retries:
                    print(f"\n[kgcl] {nb.name}: {type(exc).__name__}: {exc}; re-executing "
                          f"(attempt {attempt + 2} of {retries + 1})", file=out, flush=True)
                    print(f"[kgcl] {nb.stem:<{width}} ", end="", file=out, flush=True)
                    continue
                print(f"FAILED\n[kgcl] FAILED {nb.name}: {type(exc).__name__}: {exc}", file=out, flush=True)
                return 1
        timings[nb.stem] = round(time.perf_counter() - t0, 2)
        print(f"{timings[nb.stem]:7.1f} s", file=out, flush=True)
        for text in new_warnings(target, seen_warnings):  # e.g. offline fallbacks: once per run, not per notebook
            print(f"[kgcl]   warning (first in {nb.stem}): {text}", file=out, flush=True)
    total = round(time.perf_counter() - t_all, 2)
    write_json(results / "timings.json", {"profile": profile_name, "notebooks": timings, "total_s": total})
    print(f"[kgcl] all {len(nbs)} notebook(s) done in {total:.1f} s ({total / 60:.1f} min)", file=out, flush=True)
    return 0
