"""Ray tasks on this machine or a cluster (``executor="ray"``), and LLM synopses in Ray shards.

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
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from ... import storage
from ...text.generate import generate_synopses
from ...text.synopsis_cache import _compact_cache, read_cache
from ..execute import prepare_inputs
from .common import GridRunError, _execute_run_task, _remove_partials, _todo


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
            _remove_partials(results_dir, pending.values())  # killed workers cannot clean up
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
    res = generate_synopses(items, model, cache=cache_dir, progress=False, **kwargs)
    return {"new": int(res.provenance["new"]), "cache_hits": int(res.provenance["cache_hits"]),
            "seconds": res.provenance["seconds"]}


def merge_llm_caches(shard_dirs: Sequence, into) -> dict[str, int]:
    """Merge the ``synopses-*.jsonl`` caches of ``shard_dirs`` into folder ``into`` (records of
    the same key are identical; the union is written atomically). Returns ``{file: n_records}``."""
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
