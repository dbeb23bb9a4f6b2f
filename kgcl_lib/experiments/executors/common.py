"""What every executor shares: the grid's unfinished runs, the in-process executor, the body
of one run in a worker, the cleanup of partial folders a killed worker leaves, and the error
that lists the runs that failed."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from ..execute import execute_run, expected_keys
from ..spec import PARTIAL_SUFFIX, is_finished


class GridRunError(RuntimeError):
    """Some runs failed after their retry; ``failures`` maps run id to the error text (traceback)."""

    def __init__(self, failures: dict[str, str]):
        self.failures = dict(failures)
        lines = [f"{len(failures)} run(s) failed after a retry:"]
        for run_id, err in failures.items():
            lines.append(f"--- {run_id}\n{err.rstrip()}")
        super().__init__("\n".join(lines))


def _todo(specs, results_dir, inputs, force: bool, device_type: str | None):
    keys = expected_keys(specs, inputs, device_type)
    return [s for s in specs if force or not is_finished(results_dir, s, keys[s])]


@dataclass
class LocalExecutor:
    """Runs one after another in this process; the first failure propagates."""

    def run(self, specs: Sequence, results_dir, inputs, *, force: bool = False, progress: bool = True) -> list[dict]:
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


def _execute_run_task(spec, results_dir, inputs, device_type):
    """Body of one run in a worker process or Ray task (module-level: pickled by reference)."""
    return execute_run(spec, results_dir, inputs, device_type=device_type)


def _remove_partials(results_dir, specs) -> None:
    """Delete the temporary folders that killed workers left (they cannot clean up themselves)."""
    for spec in specs:
        for partial in (Path(results_dir) / "runs").glob(f".{spec.run_id}.*{PARTIAL_SUFFIX}"):
            shutil.rmtree(partial, ignore_errors=True)
