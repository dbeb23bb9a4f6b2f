"""Where the runs of a grid execute: in this process (``"local"``), in a pool of worker
processes on this machine (``"processes"``, the default profile's) or as Ray tasks (``"ray"``).

Both executors call :func:`kgcl_lib.experiments.execute_run` once per unfinished run, and that
function writes the run folder atomically (temporary sibling folder + rename, completion marker
last), so the results store looks the same whichever executor wrote it and a killed run never
leaves a half-written folder.

Processes (standard library, no extra)::

    run_grid(specs, results_dir, executor="processes", resources_per_run={"num_cpus": 1})

* ``usable CPUs // num_cpus`` worker processes (``spawn``: a fresh interpreter each, so no
  torch thread pool is forked) run one run at a time each, with ``num_cpus`` torch threads;
  KGCN's small-batch steps use one core poorly, so two 1-thread runs side by side finish a grid
  of 1-thread runs about twice as fast as one after another on two cores (BENCHMARKS.md);
* results are those of the local executor at the same thread count, number for number (the
  executor is not part of the run identity; ``tests/test_executors.py`` checks it);
* inputs (text embeddings, content pairs) are built once by the parent first, as for Ray;
* a run that raises is reported with its traceback while the others go on, then
  :class:`GridRunError`; a worker that dies (SIGKILL, out of memory) fails its run the same way
  and the pool is restarted for the rest; Ctrl-C kills the workers and removes their partial
  folders.

Ray (optional extra: ``pip install '.[ray]'``)::

    run_grid(specs, results_dir, executor="ray", ray_address=None | "auto" | "HOST:PORT",
             resources_per_run={"num_cpus": 1, "num_gpus": 0.25})

* one Ray task per run, with ``num_cpus`` / ``num_gpus`` from ``resources_per_run`` (fractional
  GPUs let several small runs share one device);
* the inputs every run reads (text embeddings, content pairs) are built once by the driver
  before the tasks start (:func:`kgcl_lib.experiments.prepare_inputs`), so workers only read
  them from the store;
* a task whose worker dies (SIGKILL, OOM, lost node) or that raises is retried once
  (``max_retries=1, retry_exceptions=True``); after that it is reported with its run id and
  traceback while the other runs go on, and :class:`GridRunError` is raised at the end;
* Ctrl-C cancels the outstanding tasks (their workers are killed), removes their partial
  folders and re-raises ``KeyboardInterrupt``: finished runs stay, nothing half-written does;
* on a cluster with more than one node, every node must see the results folder (shared storage:
  NFS, a cluster file system): :func:`check_shared_storage` verifies that with one tiny task per
  node and stops with the nodes that cannot see it.

Without an address a local Ray instance is started on this machine (``ray.init()``); with
``"auto"`` or ``"HOST:PORT"`` the driver joins an existing cluster (``ray start --head`` …).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

EXECUTORS = ("local", "processes", "ray")


class GridRunError(RuntimeError):
    """Some runs failed after their retry; ``failures`` maps run id to the error text (traceback)."""

    def __init__(self, failures: dict[str, str]):
        self.failures = dict(failures)
        lines = [f"{len(failures)} run(s) failed after a retry:"]
        for run_id, err in failures.items():
            lines.append(f"--- {run_id}\n{err.rstrip()}")
        super().__init__("\n".join(lines))


def get_executor(name: str = "local", *, ray_address: str | None = None, resources_per_run: dict | None = None):
    """The executor named ``name`` (``"local"``, ``"processes"`` or ``"ray"``).

    ``resources_per_run``: ``{"num_cpus": c, ...}`` of every run; ``processes`` runs
    ``usable CPUs // c`` at once (``"workers": n`` fixes the number), Ray passes it to each task;
    ``local`` ignores it, as it ignores ``ray_address`` (a profile may set them for the others).
    """
    if name == "local":
        return LocalExecutor()
    if name == "processes":
        res = dict(resources_per_run or {})
        cpus = max(1, int(float(res.get("num_cpus") or 1)))
        workers = int(res.get("workers") or 0) or max(1, usable_cpus() // cpus)
        return ProcessExecutor(workers=workers, threads_per_run=cpus)
    if name == "ray":
        return RayExecutor(address=ray_address, resources=dict(resources_per_run or {}))
    raise ValueError(f"executor must be one of {EXECUTORS}, got {name!r}")


def _todo(specs, results_dir, inputs, force: bool, device_type: str | None):
    from .experiments.execute import expected_keys
    from .experiments.spec import is_finished

    keys = expected_keys(specs, inputs, device_type)
    return [s for s in specs if force or not is_finished(results_dir, s, keys[s])]


@dataclass
class LocalExecutor:
    """Runs one after another in this process; the first failure propagates."""

    def run(self, specs: Sequence, results_dir, inputs, *, force: bool = False, progress: bool = True) -> list[dict]:
        from tqdm.auto import tqdm

        from .experiments.execute import execute_run

        todo = _todo(specs, results_dir, inputs, force, None)
        # Grouped by dataset so each is opened once (execute_run memoises the last one).
        first = {}
        for s in todo:
            first.setdefault(s.dataset, len(first))
        todo.sort(key=lambda s: first[s.dataset])
        out = []
        with tqdm(total=len(specs), initial=len(specs) - len(todo), desc="runs", disable=not progress) as bar:
            for spec in todo:
                bar.set_postfix_str(spec.run_id[:48])
                out.append(execute_run(spec, results_dir, inputs))
                bar.update(1)
        return out


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
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


def _remove_partials(results_dir, specs) -> None:
    """Delete the temporary folders that killed workers left (they cannot clean up themselves)."""
    from .experiments.spec import PARTIAL_SUFFIX

    for spec in specs:
        for partial in (Path(results_dir) / "runs").glob(f".{spec.run_id}.*{PARTIAL_SUFFIX}"):
            shutil.rmtree(partial, ignore_errors=True)


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
        from tqdm.auto import tqdm

        from .experiments.execute import prepare_inputs

        todo = _todo(specs, results_dir, inputs, force, None)
        if self.workers <= 1 or len(todo) <= 1:
            return LocalExecutor().run(specs, results_dir, inputs, force=force, progress=progress)
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

        def finished(spec, summary, error):
            if error is None:
                summaries.append(summary)
            else:
                failures[spec.run_id] = error
                print(f"[kgcl] run {spec.run_id} failed:\n{error}", file=out, flush=True)
            bar.update(1)
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
        pending = {pool.submit(_execute_run_task, s, results_dir, inputs, None): s for s in specs}
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


# --------------------------------------------------------------------------------------------
# Ray
# --------------------------------------------------------------------------------------------
def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ImportError("executor='ray' needs Ray: pip install '.[ray]' (or pip install 'ray==2.40.0')") from exc
    return ray


def init_ray(address: str | None = None, **kwargs) -> str | None:
    """Connect to (``address`` = ``"auto"`` / ``"HOST:PORT"``) or start (``None``) Ray, once per
    process; return the dashboard URL when one runs.

    A locally started instance gets ``PYTHONPATH`` pointing at this checkout so its workers import
    the same ``kgcl_lib``; on a cluster ``kgcl`` must be installed on every node. ``kwargs`` go
    to ``ray.init`` (e.g. ``num_cpus=2, include_dashboard=False`` in the tests).
    """
    ray = _import_ray()
    if not ray.is_initialized():
        if address is None:
            # How long the driver waits for the local node to register; on a loaded 2-core
            # machine start-up takes 40+ s (inherited by the processes ray.init spawns).
            os.environ.setdefault("RAY_raylet_start_wait_time_s", "180")
            os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")  # the raylet's agents: same
            root = str(Path(__file__).resolve().parents[1])
            env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
            runtime_env = dict(kwargs.pop("runtime_env", None) or {})
            runtime_env["env_vars"] = {**env, **runtime_env.get("env_vars", {})}
            kwargs["runtime_env"] = runtime_env
        kwargs.setdefault("log_to_driver", True)
        ctx = ray.init(address=address, **kwargs)
        url = getattr(ctx, "dashboard_url", None)
    else:
        url = None
        try:
            from ray._private.worker import get_dashboard_url

            url = get_dashboard_url()
        except Exception:  # private API: absent in some versions; the URL is a convenience
            url = None
    return f"http://{url}" if url and not str(url).startswith("http") else (url or None)


def _read_token(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def check_shared_storage(results_dir) -> list[str]:
    """On a multi-node cluster, check that every alive node sees ``results_dir``.

    Writes a token file there, reads it back from one task pinned to each node, and raises
    ``RuntimeError`` naming the nodes that cannot read it. Returns the node addresses checked
    (just one on a single machine, where nothing needs checking).
    """
    ray = _import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1:
        return [n.get("NodeManagerAddress", "?") for n in nodes]
    token = uuid.uuid4().hex
    path = Path(results_dir).resolve() / f".shared-storage-check-{token}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)
    try:
        read = ray.remote(num_cpus=0)(_read_token)
        refs = {n["NodeManagerAddress"]: read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(path)) for n in nodes}
        blind = [addr for addr, ref in refs.items() if ray.get(ref, timeout=120) != token]
    finally:
        path.unlink(missing_ok=True)
    if blind:
        raise RuntimeError(
            f"results folder {path.parent} is not shared storage: node(s) {blind} of the Ray cluster cannot "
            f"read it. Put the results folder (--runs-dir / $KGCL_RUNS_DIR) on storage every node mounts "
            f"at the same path (NFS, a cluster file system).")
    return list(refs)


def _execute_run_task(spec, results_dir, inputs, device_type):
    """Body of one Ray task (module-level so Ray pickles it by reference)."""
    from .experiments.execute import execute_run

    return execute_run(spec, results_dir, inputs, device_type=device_type)


@dataclass
class RayExecutor:
    """One Ray task per run; see the module docstring.

    Attributes:
        address: ``None`` (start Ray locally), ``"auto"`` or ``"HOST:PORT"``.
        resources: ``{"num_cpus": float, "num_gpus": float}`` of every task (default 1 CPU,
            no GPU); other keys are passed to ``.options`` (e.g. ``memory``, ``resources``).
        max_retries: re-executions of a failed task (worker death or exception).
        init_kwargs: extra ``ray.init`` arguments when Ray is not initialised yet.
    """

    address: str | None = None
    resources: dict = field(default_factory=dict)
    max_retries: int = 1
    init_kwargs: dict = field(default_factory=dict)

    def run(self, specs: Sequence, results_dir, inputs, *, force: bool = False, progress: bool = True,
            out=sys.stdout) -> list[dict]:
        from tqdm.auto import tqdm

        from .experiments.execute import prepare_inputs
        from .experiments.spec import PARTIAL_SUFFIX

        ray = _import_ray()
        resources = {"num_cpus": 1, **self.resources}
        device_type = "cuda" if float(resources.get("num_gpus") or 0) > 0 else "cpu"
        todo = _todo(specs, results_dir, inputs, force, device_type)
        if not todo:
            return []
        url = init_ray(self.address, **self.init_kwargs)
        if url:
            print(f"[kgcl] Ray dashboard: {url}", file=out, flush=True)
        check_shared_storage(results_dir)
        prepare_inputs(todo, results_dir, inputs)

        task = ray.remote(_execute_run_task).options(max_retries=self.max_retries, retry_exceptions=True,
                                                     **resources)
        results_dir = str(Path(results_dir).resolve())
        pending = {task.remote(s, results_dir, inputs, device_type): s for s in todo}
        summaries, failures = [], {}
        bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=f"runs (ray, {resources})",
                   disable=not progress)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        summaries.append(ray.get(ref))
                    except ray.exceptions.RayError as exc:  # task error (traceback inside) or lost worker
                        failures[spec.run_id] = str(exc)
                        print(f"[kgcl] run {spec.run_id} failed after {self.max_retries} retr"
                              f"{'y' if self.max_retries == 1 else 'ies'}:\n{exc}", file=out, flush=True)
                    bar.update(1)
                    bar.set_postfix(failed=len(failures))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=10.0)
            for spec in pending.values():  # killed workers cannot clean up after themselves
                for partial in (Path(results_dir) / "runs").glob(f".{spec.run_id}.*{PARTIAL_SUFFIX}"):
                    shutil.rmtree(partial, ignore_errors=True)
            print(f"[kgcl] interrupted: cancelled {len(pending)} outstanding run(s); "
                  f"{len(summaries)} finished and stored", file=out, flush=True)
            raise
        finally:
            bar.close()
        if failures:
            raise GridRunError(failures)
        return summaries


# --------------------------------------------------------------------------------------------
# LLM synopses in shards
# --------------------------------------------------------------------------------------------
def _generate_shard(items, model, cache_dir: str, kwargs: dict) -> dict:
    """Body of one Ray task: generate one shard of items into its own JSONL cache folder (one
    writer per cache file); return the shard's ``new`` / ``cache_hits`` counts."""
    from .text.generate import generate_synopses

    res = generate_synopses(items, model, cache=cache_dir, progress=False, **kwargs)
    return {"new": int(res.provenance["new"]), "cache_hits": int(res.provenance["cache_hits"]),
            "seconds": res.provenance["seconds"]}


def merge_llm_caches(shard_dirs: Sequence, into) -> dict[str, int]:
    """Merge the ``synopses-*.jsonl`` caches of ``shard_dirs`` into folder ``into`` (records of
    the same key are identical; the union is written atomically). Returns ``{file: n_records}``."""
    from . import storage
    from .text.generate import _compact_cache, read_cache

    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict] = {}
    for d in shard_dirs:
        for f in sorted(Path(d).glob("synopses-*.jsonl")):
            merged.setdefault(f.name, read_cache(into / f.name)[0]).update(read_cache(f)[0])
            meta = f.with_suffix(".json")
            if meta.exists() and not (into / meta.name).exists():
                storage.write_json(into / meta.name, json.loads(meta.read_text()))
    for name, records in merged.items():
        _compact_cache(into / name, records)
    return {name: len(r) for name, r in merged.items()}


def generate_synopses_ray(items, model, *, cache_dir, shard_size: int = 256, address: str | None = None,
                          resources: dict | None = None, progress: bool = True, out=sys.stdout, **kwargs):
    """:func:`kgcl_lib.text.generate.generate_synopses` over Ray: the items are cut into shards of
    ``shard_size``, each shard is one task (retried once) that generates into its own cache
    folder ``<cache_dir>/shard-<k>/``; the shard caches are then merged into ``cache_dir`` and
    the result is assembled from it here — all cache hits, so no model is loaded on the driver.
    A rerun finds every prompt cached and makes no LLM calls. ``cache_dir`` must be on storage
    every node sees (checked). Returns the ``GeneratedSynopses`` with ``provenance["shards"]``
    (``new`` / ``cache_hits`` per shard)."""
    from tqdm.auto import tqdm

    from .text.generate import generate_synopses

    ray = _import_ray()
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    url = init_ray(address)
    if url:
        print(f"[kgcl] Ray dashboard: {url}", file=out, flush=True)
    cache_dir = Path(cache_dir).resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    check_shared_storage(cache_dir)
    task = ray.remote(_generate_shard).options(max_retries=1, retry_exceptions=True,
                                               **{"num_cpus": 1, **(resources or {})})
    shards = [items.iloc[i:i + shard_size] for i in range(0, len(items), shard_size)]
    dirs = [cache_dir / f"shard-{k:04d}" for k in range(len(shards))]
    pending = {task.remote(s, model, str(d), kwargs): k for k, (s, d) in enumerate(zip(shards, dirs))}
    done, failures = {}, {}
    bar = tqdm(total=len(shards), desc="LLM shards (ray)", disable=not progress)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
            for ref in ready:
                k = pending.pop(ref)
                try:
                    done[k] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    failures[f"shard-{k:04d}"] = str(exc)
                bar.update(1)
                bar.set_postfix(failed=len(failures))
    except KeyboardInterrupt:  # generated records are already in the shard caches: a rerun resumes
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    if failures:
        raise GridRunError(failures)
    merge_llm_caches(dirs, cache_dir)
    res = generate_synopses(items, model, cache=cache_dir, progress=False, **kwargs)
    res.provenance["shards"] = [done[k] for k in sorted(done)]
    return res
