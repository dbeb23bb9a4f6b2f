"""A pool of worker processes on this machine (``executor="processes"``).

Processes (standard library, no extra)::

    run_grid(specs, results_dir, executor="processes", resources_per_run={"num_cpus": 1})

* ``usable CPUs // num_cpus`` worker processes (``spawn``: a fresh interpreter each, so no
  torch thread pool is forked) run one run at a time each, with ``num_cpus`` torch threads;
  KGCN's small-batch steps use one core poorly, so two 1-thread runs side by side finish a grid
  of 1-thread runs about twice as fast as one after another on two cores (BENCHMARKS.md);
* results are those of the local executor at the same thread count, number for number (the
  executor is not part of the run identity; ``tests/integration/test_executors.py`` checks it);
* inputs (text embeddings, content pairs) are built once by the parent first, as for Ray;
* a run that raises is reported with its traceback while the others go on, then
  :class:`GridRunError`; a worker that dies (SIGKILL, out of memory) fails its run the same way
  and the pool is restarted for the rest; Ctrl-C kills the workers and removes their partial
  folders.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...mainguard import check_main_guard
from ...progress import report
from tqdm.auto import tqdm

from ..execute import prepare_inputs
from .common import GridRunError, LocalExecutor, _execute_run_task, _remove_partials, _todo


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``quota / period``), or ``None`` if none.

    Containers (Docker ``--cpus``, Kubernetes limits) cap CPU time by a quota while the affinity
    mask still lists every CPU of the host; sizing a pool by the mask there starts one worker per
    host CPU, each holding a dataset in memory. Reads cgroup v2 ``cpu.max`` ("max 100000" or
    "200000 100000") or v1 ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us``.
    """
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask (else ``os.cpu_count()``), capped by a
    container's CPU quota (:func:`cgroup_cpu_limit`, rounded up)."""
    try:
        n = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return n


#: Where the ``processes`` executor's workers write their output, under the results folder.
WORKER_LOGS = "logs"


def _init_worker(threads: int, log_dir: str | None = None) -> None:
    """Pool initializer: cap the BLAS/OpenMP pools before torch is imported in this process, and
    send its stdout/stderr (progress bars, warnings) to ``<log_dir>/worker-<pid>.log``: several
    workers writing progress bars to one terminal interleave into noise, and a run's outcome
    (summary or traceback) travels back to the parent anyway."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log = open(Path(log_dir) / f"worker-{os.getpid()}.log", "a", buffering=1, encoding="utf-8")
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)


def _kill_pool(pool) -> None:
    """Stop a pool now: cancel what has not started and kill the workers (runs in flight die)."""
    procs = list(getattr(pool, "_processes", {}).values())  # no public API lists the workers
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.join(timeout=10)


@dataclass
class ProcessExecutor:
    """``workers`` spawned worker processes on this machine, one run at a time each; see the
    module docstring. ``threads_per_run`` caps OpenMP/BLAS in the workers (the run's torch
    threads are its ``TrainConfig.threads``, default 1, as with the local executor)."""

    workers: int = 2
    threads_per_run: int = 1

    def run(self, specs: Sequence, results_dir, inputs, *, force: bool = False, progress: bool = True,
            out=sys.stdout) -> list[dict]:
        todo = _todo(specs, results_dir, inputs, force, None)
        if self.workers <= 1 or len(todo) <= 1:
            return LocalExecutor().run(specs, results_dir, inputs, force=force, progress=progress)
        check_main_guard()  # spawned workers re-import the main script: without the guard they cannot start
        self._force = force
        prepare_inputs(todo, results_dir, inputs)
        # by dataset, so a worker mostly reuses the dataset it opened (execute_run memoises it)
        first: dict = {}
        for s in todo:
            first.setdefault(s.dataset, len(first))
        queue = sorted(todo, key=lambda s: first[s.dataset])
        results_dir = str(Path(results_dir).resolve())
        summaries, failures = [], {}
        workers = min(self.workers, len(queue))
        print(f"[kgcl] {len(todo)} run(s) in {workers} worker processes; their output (progress bars, "
              f"warnings): {Path(results_dir) / WORKER_LOGS}/worker-<pid>.log", file=out, flush=True)
        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"runs ({workers} processes)",
                   disable=not progress)
        report(len(specs) - len(todo), len(specs))

        def finished(spec, summary, error):
            if error is None:
                summaries.append(summary)
            else:
                failures[spec.run_id] = error
                print(f"[kgcl] run {spec.run_id} failed:\n{error}", file=out, flush=True)
            bar.update(1)
            report(len(specs) - len(todo) + len(summaries) + len(failures), len(specs))
            bar.set_postfix(failed=len(failures))

        try:
            lost = self._pool_map(queue, workers, results_dir, inputs, finished)
            # A worker died (SIGKILL, out of memory): every run still in that pool failed with it,
            # and which one was in flight cannot be told. Each is rerun alone in a fresh process,
            # so only a run that kills its own worker fails.
            _remove_partials(results_dir, lost)
            for spec in lost:
                if self._pool_map([spec], 1, results_dir, inputs, finished):
                    _remove_partials(results_dir, [spec])
                    finished(spec, None, "its worker process died (killed, or out of memory), twice")
        except KeyboardInterrupt:
            if self._pool is not None:
                _kill_pool(self._pool)
            _remove_partials(results_dir, todo)  # a finished run has no partial folder
            print(f"[kgcl] interrupted: stopped the worker processes; {len(summaries)} finished and stored",
                  file=out, flush=True)
            raise
        finally:
            bar.close()
        if failures:
            raise GridRunError(failures)
        return summaries

    def _pool_map(self, specs, workers, results_dir, inputs, finished) -> list:
        """Run ``specs`` in a new pool of ``workers`` processes, calling ``finished(spec, summary,
        error_text)`` per run; returns the specs lost because a worker process died."""
        import multiprocessing
        import traceback
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        lost = []
        pool = self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker,
                                                initargs=(self.threads_per_run, str(Path(results_dir) / WORKER_LOGS)))
        # no `with`: its exit waits for the runs in flight, and Ctrl-C must not (run() kills them)
        pending = {pool.submit(_execute_run_task, s, results_dir, inputs, None, self._force): s for s in specs}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                spec = pending.pop(fut)
                try:
                    summary, error = fut.result(), None
                except BrokenProcessPool:
                    lost.append(spec)
                    continue
                except Exception as exc:  # noqa: BLE001 - reported per run, the grid goes on
                    summary, error = None, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                finished(spec, summary, error)
        pool.shutdown(wait=True)
        self._pool = None
        return lost

    def __post_init__(self):
        self._pool = None
        self._force = False
