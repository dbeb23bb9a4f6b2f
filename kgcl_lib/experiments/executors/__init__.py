"""Where the runs of a grid execute: in this process (``"local"``), in a pool of worker
processes on this machine (``"processes"``, the default profile's) or as Ray tasks (``"ray"``).

Every executor calls :func:`kgcl_lib.experiments.execute_run` once per unfinished run, and that
function writes the run folder atomically (temporary sibling folder + rename, completion marker
last), so the results store looks the same whichever executor wrote it and a killed run never
leaves a half-written folder.

Modules: :mod:`.common` (the in-process executor, what all share), :mod:`.processes` (the
pool), :mod:`.ray_tasks` (Ray, and LLM synopses in Ray shards). Every name is importable from
``kgcl_lib.experiments.executors``.
"""

from __future__ import annotations

from .common import GridRunError, LocalExecutor
from .processes import WORKER_LOGS, ProcessExecutor, cgroup_cpu_limit, usable_cpus
from .ray_tasks import RayExecutor, check_shared_storage, generate_synopses_ray, init_ray, merge_llm_caches

EXECUTORS = ("local", "processes", "ray")


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


__all__ = ["EXECUTORS", "GridRunError", "LocalExecutor", "ProcessExecutor", "RayExecutor", "WORKER_LOGS",
           "cgroup_cpu_limit", "check_shared_storage", "generate_synopses_ray", "get_executor", "init_ray",
           "merge_llm_caches", "usable_cpus"]
